"""Mutual TLS on the peer and client ports: certificates issued and renewed by the operator
(Auto), or brought by the user in the cert-manager layout (Secret)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Secret

from etcd_operator.etcd import EtcdError, TLSConfig
from etcd_operator.naming import PEER_PORT, member_dns_name, member_name
from etcd_operator.resources.secret import encode_data
from etcd_operator.tls.pki import KeyPair, LeafProfile, issue, new_ca
from harness.clusters import (
    client_tls,
    condition,
    create_cluster,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_pods,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.waits import in_sync, settled

pytestmark = pytest.mark.e2e

AUTO = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}
NOW = datetime.now(UTC)


def _handshake(host: str, port: int, tls: TLSConfig) -> x509.Certificate:
    """The certificate a fresh TLS handshake with `host:port` is served (verified)."""
    context = ssl.create_default_context(cadata=tls.ca_cert.decode())
    with tempfile.TemporaryDirectory() as d:
        if tls.client_cert and tls.client_key:
            (Path(d) / "c.crt").write_bytes(tls.client_cert)
            (Path(d) / "c.key").write_bytes(tls.client_key)
            context.load_cert_chain(Path(d) / "c.crt", Path(d) / "c.key")
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        der = conn.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)


def _peer_refuses_without_certificate(host: str, ca: bytes) -> bool:
    """A peer request over TLS without a client certificate gets no answer."""
    context = ssl.create_default_context(cadata=ca.decode())
    try:
        with (
            socket.create_connection((host, PEER_PORT), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as conn,
        ):
            conn.sendall(f"GET /version HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            return conn.recv(1024) == b""
    except (ssl.SSLError, ConnectionResetError):
        return True


async def _refused(endpoints: tuple[str, ...], tls: TLSConfig | None) -> bool:
    try:
        async with etcd_client(endpoints, tls) as etcd:
            await etcd.get("k")
    except EtcdError:
        return True
    return False


async def test_auto_tls_cluster_serves_only_mutual_tls_and_renews_without_a_failed_request(
    kube: AsyncClient, namespace: str
) -> None:
    spec = {"replicas": 3, "tls": {**AUTO, "certificateDuration": "2m", "renewBefore": "90s"}}
    body = await create_ready_cluster(kube, namespace, "sec", spec)
    assert body["status"]["clientEndpoint"] == f"https://sec-client.{namespace}.svc:2379"
    urls = member_urls(namespace, "sec", range(3), tls=True)
    tls = await client_tls(kube, namespace, "sec")
    async with etcd_client(urls, tls) as etcd:
        await etcd.put("greeting", "over mTLS")
        assert (got := await etcd.get("greeting")) is not None and got.value == b"over mTLS"
        assert len((await etcd.member_list()).voters) == 3

    async def via_service() -> bytes | None:
        async with etcd_client((body["status"]["clientEndpoint"],), tls) as etcd:
            got = await etcd.get("greeting")
            return got.value if got else None

    # The Service name is in the cert. Ready pods reach the Service's EndpointSlice, then
    # localcluster's proxy, a moment later.
    await settled(via_service, lambda value: value == b"over mTLS", 30, "a get via the Service")

    # Refused: plaintext, TLS without a client certificate, a certificate of another CA.
    plain = member_urls(namespace, "sec", range(3))
    assert await _refused(plain, None)
    assert await _refused(urls, TLSConfig(ca_cert=tls.ca_cert))
    stranger = issue(
        new_ca("not the cluster's CA", NOW), LeafProfile("x", client=True), NOW, timedelta(1)
    )
    assert await _refused(urls, TLSConfig(tls.ca_cert, stranger.cert, stranger.key))
    host0 = member_dns_name(member_name("sec", 0), "sec", namespace)
    assert _peer_refuses_without_certificate(host0, tls.ca_cert)

    # Renewal: every member serves a new certificate, while a client writes all along.
    hosts = [member_dns_name(member_name("sec", i), "sec", namespace) for i in range(3)]
    before = {h: _handshake(h, 2379, tls).serial_number for h in hosts}
    pods_before = {p.metadata.uid for p in await member_pods(kube, namespace, "sec") if p.metadata}
    writes = failures = 0
    renewed: set[str] = set()
    async with etcd_client(urls, tls) as etcd:
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline and len(renewed) < len(hosts):
            for _ in range(10):
                try:
                    await etcd.put("counter", str(writes))
                except EtcdError:
                    failures += 1
                writes += 1
                await asyncio.sleep(0.05)
            for h in hosts:
                if _handshake(h, 2379, tls).serial_number != before[h]:
                    renewed.add(h)
        for _ in range(40):  # and a little after the last renewal
            await etcd.put("counter", str(writes))
            writes += 1
    print(f"renewal: {writes} writes, {failures} failed, all members renewed: {renewed}")
    assert renewed == set(hosts), "every member serves its renewed certificate"
    assert failures == 0, f"{failures} of {writes} writes failed during renewal"
    pods_after = {p.metadata.uid for p in await member_pods(kube, namespace, "sec") if p.metadata}
    assert pods_after == pods_before, "renewal restarts no member"
    async with etcd_client(urls, await client_tls(kube, namespace, "sec")) as etcd:
        assert (await etcd.get("counter")) is not None  # the renewed client certificate works


def _secret(namespace: str, name: str, pair: KeyPair, ca: bytes) -> Secret:
    data = {"tls.crt": pair.cert, "tls.key": pair.key, "ca.crt": ca}
    return Secret(
        metadata=ObjectMeta(name=name, namespace=namespace),
        type="kubernetes.io/tls",
        data=encode_data(data),
    )


async def test_a_cluster_forms_from_certificates_the_user_brings_once_they_exist(
    kube: AsyncClient, namespace: str
) -> None:
    tls_spec = {
        "peer": {"mode": "Secret", "secretName": "byo-peer"},
        "client": {
            "mode": "Secret",
            "secretName": "byo-server",
            "operatorSecretName": "byo-operator",
        },
    }
    # Before the Secrets exist: a condition and an Event name them, and nothing is created.
    await create_cluster(kube, namespace, "byo", {"replicas": 3, "tls": tls_spec})

    async def reported() -> dict[str, Any] | None:
        degraded = condition(await get_cluster(kube, namespace, "byo"), "Degraded")
        return degraded if degraded and degraded["reason"] == "TLSSecretInvalid" else None

    degraded = await eventually(reported, 60, "Degraded=TLSSecretInvalid")
    assert "Secret byo-peer (tls.peer.secretName) does not exist" in degraded["message"]

    async def event_posted() -> bool:
        # kopf posts Events from a queue of its own: the status may land first.
        events = [e async for e in kube.list(Event, namespace=namespace)]
        return any(
            e.reason == "TLSSecretInvalid" and "byo-server" in (e.message or "") for e in events
        )

    await eventually(event_posted, 30, "an Event naming the missing Secret byo-server")
    assert not await member_pods(kube, namespace, "byo")

    ca = new_ca("user CA", NOW)
    members = [member_dns_name(member_name("byo", i), "byo", namespace) for i in range(3)]
    peer = LeafProfile("byo-peer", tuple(members), server=True, client=True)
    server = LeafProfile(
        "byo-server", (*members, f"byo-client.{namespace}.svc"), server=True, client=True
    )
    day = timedelta(days=1)
    for name, profile in (
        ("byo-peer", peer),
        ("byo-server", server),
        ("byo-operator", LeafProfile("root", client=True)),
    ):
        await kube.create(_secret(namespace, name, issue(ca, profile, NOW, day), ca.cert))
    await wait_ready(kube, namespace, "byo", 3)
    app = issue(ca, LeafProfile("app", client=True), NOW, day)
    urls = member_urls(namespace, "byo", range(3), tls=True)
    async with etcd_client(urls, TLSConfig(ca.cert, app.cert, app.key)) as etcd:
        await etcd.put("brought", "yes")
        assert (got := await etcd.get("brought")) is not None and got.value == b"yes"
    # The operator issued nothing of its own.
    for own in ("byo-ca", "byo-client-tls"):
        with pytest.raises(ApiError) as missing:
            await kube.get(Secret, own, namespace=namespace)
        assert missing.value.status.code == 404


async def _secret_versions(kube: AsyncClient, namespace: str, name: str) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for suffix in ("ca", "peer-tls", "server-tls", "client-tls", "operator-tls"):
        secret = await kube.get(Secret, f"{name}-{suffix}", namespace=namespace)
        versions[suffix] = secret.metadata.resourceVersion if secret.metadata else None
    cluster = await get_cluster(kube, namespace, name)
    versions["cluster"] = cluster["metadata"]["resourceVersion"]
    return versions


async def test_an_idle_auto_tls_cluster_writes_nothing_and_grows_without_new_certificates(
    kube: AsyncClient, namespace: str
) -> None:
    await create_ready_cluster(kube, namespace, "grow", {"replicas": 1, "tls": AUTO})
    # The round after Ready may still record the last operation: wait for it.
    await eventually(lambda: in_sync(kube, namespace, "grow"), 60, "grow in sync")
    before = await _secret_versions(kube, namespace, "grow")
    await asyncio.sleep(20)  # longer than the in-sync interval: idle rounds happen
    assert await _secret_versions(kube, namespace, "grow") == before, "an idle round wrote"

    await patch_spec(kube, namespace, "grow", {"replicas": 3})
    await wait_ready(kube, namespace, "grow", 3, timeout=240)
    after = await _secret_versions(kube, namespace, "grow")
    assert {k: v for k, v in after.items() if k != "cluster"} == {
        k: v for k, v in before.items() if k != "cluster"
    }, "members added later are covered by the certificates issued at creation"
    tls = await client_tls(kube, namespace, "grow")
    for i in range(3):
        async with etcd_client(member_urls(namespace, "grow", [i], tls=True), tls) as etcd:
            await etcd.put(f"via-{i}", "ok")
            assert (await etcd.get(f"via-{i}")) is not None
