"""One client port serving both https and plaintext clients, as a member does with
`spec.tls.client.allowPlaintext` (`--listen-client-urls=https://…:2379,http://…:2379`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from etcd_procs import EtcdBinarySet, LocalEtcdCluster

from etcd_operator.etcd import EtcdClient, EtcdConfig, EtcdError, TLSConfig
from etcd_operator.tls.pki import LeafProfile, issue, new_ca

pytestmark = pytest.mark.timeout(120)


async def test_one_port_serves_mutual_tls_and_plaintext_clients(
    etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> None:
    now = datetime.now(UTC)
    ca = new_ca("test CA", now)
    server = issue(
        ca, LeafProfile("m0", ("localhost",), ("127.0.0.1",), True, True), now, timedelta(1)
    )
    client = issue(ca, LeafProfile("app", client=True), now, timedelta(1))
    pki = etcd_tmp / "pki"
    pki.mkdir()
    for name, data in (("ca.crt", ca.cert), ("tls.crt", server.cert), ("tls.key", server.key)):
        (pki / name).write_bytes(data)
    tls = TLSConfig(ca_cert=ca.cert, client_cert=client.cert, client_key=client.key)
    cluster = LocalEtcdCluster(etcd_bins_checked, etcd_tmp, client_tls=tls)
    member = cluster.new_member("m0")
    port = member.client_port
    cluster.extra_flags = (
        f"--listen-client-urls=https://127.0.0.1:{port},http://127.0.0.1:{port}",
        f"--cert-file={pki / 'tls.crt'}",
        f"--key-file={pki / 'tls.key'}",
        f"--trusted-ca-file={pki / 'ca.crt'}",
        "--client-cert-auth",
    )
    cluster.start(member, f"m0={member.peer_url}", "new")
    try:
        async with EtcdClient(cluster.config()) as secure:
            await cluster.wait_healthy(secure)
            await secure.put("k", "over TLS")
        plain = EtcdConfig(endpoints=(f"http://127.0.0.1:{port}",), dial_timeout=2.0)
        async with EtcdClient(plain) as c:
            kv = await c.get("k")
            assert kv is not None and kv.value == b"over TLS"
        no_cert = TLSConfig(ca_cert=ca.cert)
        async with EtcdClient(cluster.config(tls=no_cert, dial_timeout=2.0)) as c:
            with pytest.raises(EtcdError):
                await c.get("k")  # https still demands a client certificate
    finally:
        cluster.stop_all()
