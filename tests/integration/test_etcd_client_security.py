"""TLS and auth of the etcd client against real etcd processes (certificates made here)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from etcd_procs import EtcdBinarySet, LocalEtcdCluster
from pki import Pem, issue, write_pem

from etcd_operator.etcd import (
    AuthError,
    Credentials,
    EtcdClient,
    EtcdUnreachable,
    TLSConfig,
)

pytestmark = pytest.mark.timeout(120)


@dataclass
class TLSCluster:
    cluster: LocalEtcdCluster
    ca: Pem
    client: Pem


@pytest.fixture
async def tls_etcd(etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path) -> AsyncIterator[TLSCluster]:
    """A 1-member cluster serving clients over mutual TLS only.

    The server certificate names only ``m0.etcd.test`` (no IP), as a pod's certificate
    names its DNS name, so connecting by IP needs ``TLSConfig.server_name``.
    """
    ca = issue("test-ca", None)
    server = issue(
        "m0",
        ca,
        sans=[x509.DNSName("m0.etcd.test")],
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
    )
    client = issue("root", ca, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    pki = etcd_tmp / "pki"
    pki.mkdir()
    (pki / "ca.crt").write_bytes(ca.cert)
    cert, key = write_pem(pki, "server", server)
    cluster = LocalEtcdCluster(
        etcd_bins_checked,
        etcd_tmp,
        extra_flags=(
            f"--cert-file={cert}",
            f"--key-file={key}",
            f"--trusted-ca-file={pki / 'ca.crt'}",
            "--client-cert-auth",
        ),
        client_tls=TLSConfig(
            ca_cert=ca.cert,
            client_cert=client.cert,
            client_key=client.key,
            server_name="m0.etcd.test",
        ),
    )
    cluster.start_initial(1)
    try:
        async with EtcdClient(cluster.config()) as c:
            await cluster.wait_healthy(c)
        yield TLSCluster(cluster, ca, client)
    finally:
        cluster.stop_all()


async def test_tls_calls(tls_etcd: TLSCluster) -> None:
    cluster = tls_etcd.cluster
    endpoint = cluster.endpoints[0]
    assert endpoint.startswith("https://")
    async with EtcdClient(cluster.config()) as client:
        assert len((await client.member_list()).members) == 1
        rev = await client.put("tls", "yes")
        kv = await client.get("tls")
        assert kv is not None and kv.mod_revision == rev
        assert (await client.status(endpoint)).is_leader
        size = 0
        async with client.snapshot(endpoint) as stream:
            async for chunk in stream:
                size += len(chunk)
        assert size == stream.size > 0 and stream.sha256 is not None


async def test_tls_wrong_trust_fails_fast(tls_etcd: TLSCluster) -> None:
    cluster = tls_etcd.cluster
    other_ca = issue("other-ca", None)
    assert cluster.client_tls is not None
    cases = {
        # the server's certificate is not signed by the CA we trust
        "untrusted server": TLSConfig(
            ca_cert=other_ca.cert,
            client_cert=tls_etcd.client.cert,
            client_key=tls_etcd.client.key,
            server_name="m0.etcd.test",
        ),
        # the certificate names m0.etcd.test, not 127.0.0.1
        "name mismatch": TLSConfig(
            ca_cert=tls_etcd.ca.cert,
            client_cert=tls_etcd.client.cert,
            client_key=tls_etcd.client.key,
        ),
    }
    for case, tls in cases.items():
        async with EtcdClient(cluster.config(tls=tls, dial_timeout=2.0)) as client:
            start = time.monotonic()
            with pytest.raises(EtcdUnreachable):
                await client.status(cluster.endpoints[0])
            assert time.monotonic() - start < 2.5, case


def _etcdctl(cluster: LocalEtcdCluster, *args: str) -> None:
    subprocess.run(
        [str(cluster.bins.etcdctl), f"--endpoints={cluster.endpoints[0]}", *args],
        check=True,
        capture_output=True,
    )


async def test_auth_credentials(etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path) -> None:
    # Simple tokens expire after the TTL without use; a short one exercises re-authentication.
    cluster = LocalEtcdCluster(etcd_bins_checked, etcd_tmp, extra_flags=("--auth-token-ttl=1",))
    cluster.start_initial(1)
    try:
        async with EtcdClient(cluster.config()) as plain:
            await cluster.wait_healthy(plain)
        _etcdctl(
            cluster, "user", "add", "root", "--new-user-password=s3cret", "--interactive=false"
        )
        _etcdctl(cluster, "auth", "enable")

        async with EtcdClient(cluster.config(credentials=Credentials("root", "s3cret"))) as client:
            rev = await client.put("secured", "v")
            kv = await client.get("secured")
            assert kv is not None and kv.mod_revision == rev
            assert len((await client.member_list()).members) == 1
            assert (await client.status(cluster.endpoints[0])).is_leader
            assert (await client.health(cluster.endpoints[0])).healthy
            token = client._conns[cluster.endpoints[0]].metadata
            await asyncio.sleep(3)  # the token expires
            assert (await client.get("secured")) is not None
            # the expired token was replaced transparently
            assert client._conns[cluster.endpoints[0]].metadata not in (None, token)

        async with EtcdClient(cluster.config(credentials=Credentials("root", "wrong"))) as client:
            with pytest.raises(AuthError):
                await client.get("secured")
        async with EtcdClient(cluster.config()) as client:
            with pytest.raises(AuthError):
                await client.get("secured")
    finally:
        cluster.stop_all()
