"""What a running etcd re-reads from its TLS files, with certificates the operator issues
(etcd_operator.tls.pki): a renewed key pair is served from the next handshake on, without a
restart, so a renewed Secret needs no rollout; the trusted CA file is read once at start, so
a new CA in the bundle only counts after a restart (what a CA rotation must plan for)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from etcd_procs import EtcdBinarySet, LocalEtcdCluster

from etcd_operator.etcd import EtcdClient, EtcdError, TLSConfig
from etcd_operator.tls.pki import KeyPair, LeafProfile, bundle, issue, new_ca

pytestmark = pytest.mark.timeout(120)

NOW = datetime.now(UTC)
SERVER = LeafProfile("m0", ("localhost",), ("127.0.0.1",), server=True, client=True)
CLIENT = LeafProfile("app", client=True)


def _replace(path: Path, data: bytes) -> None:
    # As a kubelet updates a Secret volume: the new file appears at once, never half-written.
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class Served:
    cluster: LocalEtcdCluster
    pki: Path
    ca: KeyPair


@pytest.fixture
async def served(etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path) -> AsyncIterator[Served]:
    ca = new_ca("test CA", NOW)
    server = issue(ca, SERVER, NOW, timedelta(hours=1))
    client = issue(ca, CLIENT, NOW, timedelta(hours=1))
    pki = etcd_tmp / "pki"
    pki.mkdir()
    (pki / "ca.crt").write_bytes(ca.cert)
    (pki / "tls.crt").write_bytes(server.cert)
    (pki / "tls.key").write_bytes(server.key)
    cluster = LocalEtcdCluster(
        etcd_bins_checked,
        etcd_tmp,
        extra_flags=(
            f"--cert-file={pki / 'tls.crt'}",
            f"--key-file={pki / 'tls.key'}",
            f"--trusted-ca-file={pki / 'ca.crt'}",
            "--client-cert-auth",
        ),
        client_tls=TLSConfig(ca_cert=ca.cert, client_cert=client.cert, client_key=client.key),
    )
    cluster.start_initial(1)
    try:
        async with EtcdClient(cluster.config()) as c:
            await cluster.wait_healthy(c)
        yield Served(cluster, pki, ca)
    finally:
        cluster.stop_all()


def _served_serial(endpoint: str, ca: bytes, client: KeyPair, tmp: Path) -> int:
    """The serial of the certificate a fresh handshake is served."""
    host, port = endpoint.removeprefix("https://").rsplit(":", 1)
    (tmp / "c.crt").write_bytes(client.cert)
    (tmp / "c.key").write_bytes(client.key)
    context = ssl.create_default_context(cadata=ca.decode())
    context.load_cert_chain(tmp / "c.crt", tmp / "c.key")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_a_renewed_key_pair_is_served_from_the_next_handshake(
    served: Served, etcd_tmp: Path
) -> None:
    endpoint = served.cluster.endpoints[0]
    client = issue(served.ca, CLIENT, NOW, timedelta(hours=1))
    before = _served_serial(endpoint, served.ca.cert, client, etcd_tmp)
    async with EtcdClient(served.cluster.config()) as kept:
        await kept.put("k", "before")
        renewed = issue(served.ca, SERVER, NOW, timedelta(hours=2))
        _replace(served.pki / "tls.key", renewed.key)
        _replace(served.pki / "tls.crt", renewed.cert)
        after = _served_serial(endpoint, served.ca.cert, client, etcd_tmp)
        assert after != before
        assert after == x509.load_pem_x509_certificate(renewed.cert).serial_number
        await kept.put("k", "after")  # the connection made before keeps working
    async with EtcdClient(served.cluster.config()) as fresh:
        kv = await fresh.get("k")
        assert kv is not None and kv.value == b"after"


async def test_the_trusted_ca_file_is_read_only_at_start(served: Served) -> None:
    other = new_ca("next CA", NOW)
    stranger = issue(other, CLIENT, NOW, timedelta(hours=1))
    tls = TLSConfig(ca_cert=served.ca.cert, client_cert=stranger.cert, client_key=stranger.key)
    config = served.cluster.config(tls=tls, dial_timeout=2.0, request_timeout=2.0)
    async with EtcdClient(config) as client:
        with pytest.raises(EtcdError):
            await client.get("k")
    _replace(served.pki / "ca.crt", bundle([served.ca.cert, other.cert]))
    await asyncio.sleep(1)
    async with EtcdClient(config) as client:
        with pytest.raises(EtcdError):
            await client.get("k")  # still refused: the running etcd kept its CA pool
    member = next(iter(served.cluster.members.values()))
    assert member.proc is not None
    member.proc.terminate()
    member.proc.wait(30)
    served.cluster.start(member, f"{member.name}={member.peer_url}", "existing")
    async with EtcdClient(served.cluster.config()) as c:
        await served.cluster.wait_healthy(c)
    async with EtcdClient(config) as client:
        await client.put("k", "new CA")  # after a restart the bundle is trusted
