"""CA rotation of an Auto TLS cluster on demand (the etcd.operator.io/rotate-ca annotation),
under continuous writes: no failed request, every member ends up serving certificates of the
new CA on both ports, and a client holding only a certificate of the old CA is refused."""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Event, Secret
from lightkube.types import PatchType

from etcd_operator.etcd import EtcdError, TLSConfig
from etcd_operator.kube import EtcdClusterResource
from etcd_operator.naming import PEER_PORT, ca_secret_name, member_dns_name, member_name
from etcd_operator.resources.labels import ROTATE_CA_ANNOTATION, TRUST_BUNDLE_ANNOTATION
from etcd_operator.resources.secret import decode_data
from etcd_operator.tls.pki import load_bundle, pem_from_der, signed_by
from harness.clusters import (
    client_tls,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
)
from harness.operator_process import OperatorProcess
from harness.waits import events, settled, summary, wait_events

pytestmark = pytest.mark.e2e

AUTO = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}


def _served(host: str, port: int, tls: TLSConfig) -> bytes:
    """The PEM certificate a fresh TLS handshake with `host:port` is served (verified)."""
    context = ssl.create_default_context(cadata=tls.ca_cert.decode())
    with tempfile.TemporaryDirectory() as d:
        assert tls.client_cert and tls.client_key
        (Path(d) / "c.crt").write_bytes(tls.client_cert)
        (Path(d) / "c.key").write_bytes(tls.client_key)
        context.load_cert_chain(Path(d) / "c.crt", Path(d) / "c.key")
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
        assert der is not None
        return pem_from_der(der)


@dataclass
class App:
    """An application mounting the client Secret: writes without pause, and reconnects with
    the Secret's content whenever it changes (read again every second)."""

    kube: AsyncClient
    namespace: str
    name: str
    urls: tuple[str, ...]
    acked: int = 0
    failed: list[str] = field(default_factory=list)
    reconnects: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while not self.stop.is_set():
            tls = await client_tls(self.kube, self.namespace, self.name)
            self.reconnects += 1
            checked = time.monotonic()
            async with etcd_client(self.urls, tls) as etcd:
                while not self.stop.is_set():
                    try:
                        await etcd.put(f"app/{self.acked % 50}", str(self.acked))
                        self.acked += 1
                    except EtcdError as e:
                        self.failed.append(str(e))
                    await asyncio.sleep(0.02)
                    if time.monotonic() - checked > 1:
                        checked = time.monotonic()
                        if await client_tls(self.kube, self.namespace, self.name) != tls:
                            break


async def _annotate(kube: AsyncClient, namespace: str, name: str, value: str) -> None:
    await kube.patch(
        EtcdClusterResource,
        name,
        {"metadata": {"annotations": {ROTATE_CA_ANNOTATION: value}}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )


async def _ca(kube: AsyncClient, namespace: str, name: str) -> dict[str, bytes]:
    return decode_data(await kube.get(Secret, ca_secret_name(name), namespace=namespace))


@dataclass
class Rotation:
    old_ca: bytes
    old_app: TLSConfig
    app: App
    phases: list[str]
    took: float


async def _rotate_under_load(
    kube: AsyncClient,
    ns: str,
    name: str,
    request: str,
    on_phase: Callable[[str], Awaitable[None]] | None = None,
) -> Rotation:
    """Annotate the cluster while an application writes; wait until the rotation is done."""
    urls = member_urls(ns, name, range(3), tls=True)
    old_ca = (await _ca(kube, ns, name))["tls.crt"]
    old_app = await client_tls(kube, ns, name)
    app = App(kube, ns, name, urls)
    task = asyncio.create_task(app.run())
    phases: list[str] = []
    started = time.monotonic()
    try:
        await asyncio.sleep(3)
        await _annotate(kube, ns, name, request)

        async def rotated() -> dict[str, Any] | None:
            body = await get_cluster(kube, ns, name)
            rotation = (body.get("status") or {}).get("caRotation") or {}
            if not phases or phases[-1] != rotation.get("phase"):
                phases.append(str(rotation.get("phase")))
                if on_phase is not None:
                    await on_phase(phases[-1])
            ca = await _ca(kube, ns, name)
            pods = await member_pods(kube, ns, name)
            if (
                rotation.get("phase") == "Idle"
                and rotation.get("handledRequest") == request
                and ca["tls.crt"] != old_ca
                and len(load_bundle(ca["ca.crt"])) == 1
                and len(pods) == 3
                and all(p.status and p.status.phase == "Running" for p in pods)
                and (body.get("status") or {}).get("phase") == "Running"
            ):
                return body
            return None

        await eventually(rotated, 600, f"{ns}/{name} rotated to a new CA", 1.0)
        took = time.monotonic() - started
        await asyncio.sleep(3)  # and a little after
    finally:
        app.stop.set()
        await task
    print(
        f"CA rotation: phases {phases}, {took:.0f}s, {app.acked} writes, {len(app.failed)} "
        f"failed, {app.reconnects} client reconnects"
    )
    return Rotation(old_ca, old_app, app, phases, took)


async def test_an_on_demand_ca_rotation_fails_no_request_and_leaves_only_the_new_ca(
    kube: AsyncClient, namespace: str
) -> None:
    ns, name = namespace, "rot"
    await create_ready_cluster(kube, ns, name, {"replicas": 3, "tls": AUTO})
    urls = member_urls(ns, name, range(3), tls=True)
    done = await _rotate_under_load(kube, ns, name, "2026-11-30")
    app, old_ca, old_app = done.app, done.old_ca, done.old_app
    assert not app.failed, f"{len(app.failed)} of {app.acked} writes failed: {app.failed[:3]}"
    assert app.acked > 500
    # Status is polled (a phase may last one round); Events name every phase.
    # kopf posts them from its own queue: the last one may come after Idle is in status.
    phases = {"Distributing", "Restarting", "Reissuing", "Retiring", "Idle"}

    async def rotation_events() -> list[Event]:
        return [e for e in await events(kube, ns) if e.reason == "CARotation"]

    await settled(
        rotation_events,
        lambda seen: phases <= {(e.message or "").split(":")[0] for e in seen},
        60,
        f"CARotation Events announcing {sorted(phases)}",
        describe=summary,
    )

    new = await _ca(kube, ns, name)
    tls = await client_tls(kube, ns, name)
    assert load_bundle(tls.ca_cert) == load_bundle(new["tls.crt"])
    # Every certificate members serve, to clients and to peers, chains to the new CA.
    for i in range(3):
        host = member_dns_name(member_name(name, i), name, ns)
        for port in (2379, PEER_PORT):
            served = _served(host, port, tls)
            assert signed_by(served, new["tls.crt"]) and not signed_by(served, old_ca)
    # Members trust only the new CA: the old client certificate is refused, the new one works.
    stale = TLSConfig(tls.ca_cert, old_app.client_cert, old_app.client_key)
    with pytest.raises(EtcdError):
        async with etcd_client(urls, stale) as etcd:
            await etcd.get("app/0")
    async with etcd_client(urls, tls) as etcd:
        assert await etcd.get("app/0") is not None
    pods = await member_pods(kube, ns, name)
    assert (
        len(
            {
                (p.metadata.annotations or {}).get(TRUST_BUNDLE_ANNOTATION)
                for p in pods
                if p.metadata
            }
        )
        == 1
    )


async def test_a_rotation_resumes_after_the_operator_is_killed_and_is_done_once(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    ns, name = namespace, "rotkill"
    await create_ready_cluster(kube, ns, name, {"replicas": 3, "tls": AUTO})

    async def kill_while_restarting(phase: str) -> None:
        if phase == "Restarting":
            operator.kill()
            await asyncio.sleep(3)
            operator.start()

    done = await _rotate_under_load(kube, ns, name, "once", kill_while_restarting)
    assert "Restarting" in done.phases
    assert not done.app.failed, done.app.failed[:3]
    # One new CA for the one request: the bundle went from old to old + new to new, and the
    # new CA's Secret was written once (its creation time is the rotation's start).
    new_cas = await wait_events(
        kube,
        ns,
        lambda e: e.reason == "CertificateIssued" and "new CA, requested" in (e.message or ""),
        "a CertificateIssued Event for the new CA",
    )
    assert len(new_cas) == 1 and (new_cas[0].count or 1) == 1, [e.message for e in new_cas]
