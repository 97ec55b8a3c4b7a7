"""Peer TLS switched on in a running cluster of real etcd processes, the way the operator does
it (planner/tls_switch.py), under continuous writes: first every member restarts holding the
peer certificate while still serving plaintext peers, then each member's peer URL is moved to
https with MemberUpdate and the member restarts serving it. No write may fail or be lost."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from etcd_procs import EtcdProcess, LocalEtcdCluster
from pki import issue, write_pem

from etcd_operator.etcd import EtcdClient, EtcdError, EtcdUnavailable, MemberStatus

pytestmark = pytest.mark.timeout(180)


def _peer_flags(pki: Path) -> tuple[str, ...]:
    return (
        f"--peer-cert-file={pki / 'peer.crt'}",
        f"--peer-key-file={pki / 'peer.key'}",
        f"--peer-trusted-ca-file={pki / 'ca.crt'}",
        "--peer-client-cert-auth",
    )


async def _statuses(cluster: LocalEtcdCluster, client: EtcdClient) -> dict[str, MemberStatus]:
    statuses = await client.statuses(cluster.endpoints)
    assert all(isinstance(s, MemberStatus) for s in statuses.values()), statuses
    return {e: s for e, s in statuses.items() if isinstance(s, MemberStatus)}


async def _restart(cluster: LocalEtcdCluster, client: EtcdClient, m: EtcdProcess) -> None:
    """Restart one member as the operator does: leadership moves away first."""
    statuses = await _statuses(cluster, client)
    own = statuses[m.client_url]
    if own.leader == own.member_id:
        other = next(s for e, s in statuses.items() if e != m.client_url)
        await client.move_leader(other.member_id)
    cluster.stop(m.name)
    cluster.start(m, "", "existing")  # the data dir exists: the initial cluster is ignored
    await cluster.wait_healthy(client)


async def test_peer_tls_is_switched_on_one_member_at_a_time_without_a_failed_write(
    etcd3: LocalEtcdCluster, etcd_tmp: Path
) -> None:
    cluster = etcd3
    pki = etcd_tmp / "pki"
    pki.mkdir()
    ca = issue("peer-ca", None)
    (pki / "ca.crt").write_bytes(ca.cert)
    peer = issue(
        "peer",
        ca,
        sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    write_pem(pki, "peer", peer)
    acknowledged: list[int] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async with EtcdClient(cluster.config()) as client:

        async def writer() -> None:
            n = 0
            # A loaded machine may take seconds to commit; a timeout's outcome is unknown, so
            # the writer waits rather than count a write that may have been applied as failed.
            async with EtcdClient(cluster.config(request_timeout=15.0)) as w:
                while not stop.is_set():
                    # etcd answers "request timed out" when a leadership move (each restart
                    # here starts with one) overtakes a proposal: its outcome is unknown, and
                    # the put, idempotent, is sent again as an application would.
                    for attempt in range(3):
                        try:
                            await w.put(f"k{n}", str(n))
                            acknowledged.append(n)
                            break
                        except EtcdUnavailable as e:
                            if attempt == 2:
                                failures.append(f"put k{n}: {e}")
                        except EtcdError as e:
                            failures.append(f"put k{n}: {e}")
                            break
                    n += 1

        task = asyncio.create_task(writer())
        members = list(cluster.members.values())
        for m in members:  # pass one: certificates in, still plaintext peers
            m.flags = _peer_flags(pki)
            await _restart(cluster, client, m)
        ids = {s.member_id: e for e, s in (await _statuses(cluster, client)).items()}
        for member_id, endpoint in ids.items():  # pass two: one URL, then its restart
            m = next(m for m in members if m.client_url == endpoint)
            m.peer_scheme = "https"
            await client.member_update(member_id, [m.peer_url])
            await _restart(cluster, client, m)
        stop.set()
        await task
        listed = await client.member_list()
        for k in acknowledged[:: max(1, len(acknowledged) // 50)]:
            got = await client.get(f"k{k}")
            assert got is not None, f"acknowledged write k{k} lost"

    assert not failures, failures[:5]
    assert len(acknowledged) > 50
    assert all(u.startswith("https://") for m in listed.members for u in m.peer_urls)
    # Raft's port now takes only TLS clients with a certificate of the peer CA.
    url = f"127.0.0.1:{members[0].peer_port}/members"
    no_cert = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        await asyncio.to_thread(urllib.request.urlopen, f"http://{url}", timeout=2)
    with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(
            urllib.request.urlopen, f"https://{url}", timeout=2, context=no_cert
        )
