"""A CA rotation carried out on a real 3-member mutual-TLS etcd cluster (peer and client), with
the operator's own pieces: `tls.rotation.decide` says what comes next from the records (the
CA, the certificate files, the bundle each member started with, what each member serves);
this test plays the shell and the planner (files replaced as a kubelet does, one member
restarted at a time, the leader last) while an application writes all along, re-reading its
client Secret as it changes. No write may fail, and at the end nothing trusts the old CA."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from etcd_procs import EtcdBinarySet, EtcdProcess, LocalEtcdCluster

from etcd_operator.etcd import EtcdClient, EtcdError, TLSConfig
from etcd_operator.etcd.errors import EtcdUnavailable, NoLeader, ProposalDropped
from etcd_operator.handlers.served import all_served
from etcd_operator.tls.pki import (
    KeyPair,
    LeafProfile,
    bundle,
    issue,
    load_bundle,
    new_ca,
    pem_from_der,
    signed_by,
)
from etcd_operator.tls.rotation import LeafState, Phase, RotationSeen, decide, trust_of

pytestmark = pytest.mark.timeout(300)

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
MEMBER = LeafProfile("m", ("localhost",), ("127.0.0.1",), server=True, client=True)
APP = LeafProfile("app", client=True)
LEAVES = ("peer", "server", "client")


def _replace(path: Path, data: bytes) -> None:
    # As a kubelet updates a Secret volume: the new file appears at once, never half-written.
    tmp = path.with_suffix(".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _TLSPeers(EtcdProcess):
    @property
    def peer_url(self) -> str:
        return f"https://127.0.0.1:{self.peer_port}"


@dataclass
class _Cluster(LocalEtcdCluster):
    def new_member(self, name: str) -> EtcdProcess:
        plain = super().new_member(name)
        member = _TLSPeers(**{k: getattr(plain, k) for k in plain.__dataclass_fields__})
        self.members[name] = member
        return member


@dataclass
class Records:
    """What the operator's Secrets would hold, as files in the layout members mount."""

    root: Path
    signer: KeyPair
    bundle: bytes
    handled: str | None = None
    # Per member, the trust digest it started with (the pod annotation).
    started_with: dict[str, str] = field(default_factory=dict)

    def dir(self, leaf: str) -> Path:
        return self.root / leaf

    def read(self, leaf: str, key: str) -> bytes:
        return (self.dir(leaf) / key).read_bytes()

    def write_leaf(self, leaf: str, pair: KeyPair | None, ca: bytes) -> None:
        d = self.dir(leaf)
        d.mkdir(exist_ok=True)
        if pair is not None:
            _replace(d / "tls.key", pair.key)
            _replace(d / "tls.crt", pair.cert)
        _replace(d / "ca.crt", ca)

    def trust(self) -> str:
        return trust_of([self.read("peer", "ca.crt"), self.read("server", "ca.crt")]).digest

    def app(self) -> TLSConfig:
        return TLSConfig(
            ca_cert=self.read("client", "ca.crt"),
            client_cert=self.read("client", "tls.crt"),
            client_key=self.read("client", "tls.key"),
        )


def _flags(records: Records) -> tuple[str, ...]:
    """The TLS flags resources.pod gives a member, pointing at these directories."""
    server, peer = records.dir("server"), records.dir("peer")
    return (
        f"--cert-file={server}/tls.crt",
        f"--key-file={server}/tls.key",
        f"--trusted-ca-file={server}/ca.crt",
        "--client-cert-auth",
        f"--peer-cert-file={peer}/tls.crt",
        f"--peer-key-file={peer}/tls.key",
        f"--peer-trusted-ca-file={peer}/ca.crt",
        "--peer-client-cert-auth",
    )


@dataclass
class Fixture:
    cluster: _Cluster
    records: Records


@pytest.fixture
async def mtls(etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path) -> AsyncIterator[Fixture]:
    ca = new_ca("old CA", NOW - 300 * DAY, validity=3650 * DAY)
    records = Records(etcd_tmp / "pki", ca, ca.cert)
    records.root.mkdir()
    for leaf in LEAVES:
        records.write_leaf(leaf, issue(ca, APP if leaf == "client" else MEMBER, NOW, DAY), ca.cert)
    cluster = _Cluster(etcd_bins_checked, etcd_tmp, extra_flags=_flags(records))
    cluster.client_tls = records.app()
    cluster.start_initial(3)
    for name in cluster.members:
        records.started_with[name] = records.trust()
    try:
        async with EtcdClient(cluster.config()) as c:
            await cluster.wait_healthy(c)
        yield Fixture(cluster, records)
    finally:
        cluster.stop_all()


@dataclass
class Writer:
    """An application: writes without pause and reconnects with its client Secret's new
    content whenever that changes (as one re-reading a mounted Secret does)."""

    records: Records
    endpoints: tuple[str, ...]
    acked: int = 0
    failed: list[str] = field(default_factory=list)
    reconnects: int = 0
    leadership_retries: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, cluster: LocalEtcdCluster) -> None:
        while not self.stop.is_set():
            tls = self.records.app()
            self.reconnects += 1
            async with EtcdClient(cluster.config(tls=tls, request_timeout=5.0)) as etcd:
                while not self.stop.is_set() and self.records.app() == tls:
                    await self._put(etcd)
                    await asyncio.sleep(0.01)

    async def _put(self, etcd: EtcdClient) -> None:
        # A restart moves leadership, and etcd itself may answer a proposal caught in it
        # ("request timed out, possibly due to previous leader failure", "leader changed",
        # "raft proposal dropped", "server stopped"; outcome unknown): that is the restart, not
        # the certificates, and the idempotent put is sent again, as an application would.
        # Anything else, a TLS refusal (no answer from etcd) above all, fails the test.
        for attempt in range(3):
            try:
                await etcd.put(f"k{self.acked % 100}", str(self.acked))
                self.acked += 1
                return
            except EtcdError as e:
                if not _leadership_move(e) or attempt == 2:
                    self.failed.append(str(e))
                    return
                self.leadership_retries += 1


def _leadership_move(e: EtcdError) -> bool:
    answered = type(e) is EtcdUnavailable and e.details.startswith("etcdserver:")
    return answered or isinstance(e, NoLeader | ProposalDropped)


async def _restart(cluster: LocalEtcdCluster, records: Records, name: str) -> None:
    member = cluster.members[name]
    cluster.stop(name)  # SIGTERM: etcd hands leadership over and stops cleanly
    records.started_with[name] = records.trust()
    cluster.start(member, f"{name}={member.peer_url}", "existing")
    async with EtcdClient(cluster.config(tls=records.app())) as c:
        await cluster.wait_healthy(c)
        # Caught up: the restarted member applied what the others did.
        deadline = time.monotonic() + 20
        while True:
            statuses = [await c.status(u) for u in cluster.endpoints]
            if len({s.raft_applied_index for s in statuses}) == 1:
                return
            assert time.monotonic() < deadline, "restarted member does not catch up"
            await asyncio.sleep(0.1)


async def _next_to_restart(cluster: LocalEtcdCluster, records: Records) -> str:
    """The planner's order: a stale follower first, the leader last."""
    want = records.trust()
    stale = [n for n, d in records.started_with.items() if d != want]
    async with EtcdClient(cluster.config(tls=records.app())) as c:
        leaders = [
            n for n, m in cluster.members.items() if (await c.status(m.client_url)).is_leader
        ]
    followers = [n for n in stale if n not in leaders]
    return followers[-1] if followers else stale[0]


async def _seen(cluster: LocalEtcdCluster, records: Records, requested: str) -> RotationSeen:
    signer = records.signer.cert
    leaves = []
    for leaf in LEAVES:
        cert = records.read(leaf, "tls.crt")
        issued = NOW - DAY  # PROPAGATION is replaced by the probe of what members serve
        leaves.append(
            LeafState(
                signed_by(cert, signer), records.read(leaf, "ca.crt") == records.bundle, issued
            )
        )
    served = await all_served(cluster.endpoints, records.app())
    want = records.trust()
    return RotationSeen(
        authorities=len(load_bundle(records.bundle)),
        ca_not_before=NOW,
        ca_not_after=NOW + 3650 * DAY,
        leaves=leaves,
        members_trust=all(d == want for d in records.started_with.values()),
        served=all(d is not None and signed_by(pem_from_der(d), signer) for d in served),
        requested=requested,
        handled=records.handled,
        now=datetime.now(UTC),
    )


async def test_a_ca_rotation_through_every_phase_fails_no_write(mtls: Fixture) -> None:
    cluster, records = mtls.cluster, mtls.records
    old = records.signer
    old_app = records.app()
    writer = Writer(records, cluster.endpoints)
    task = asyncio.create_task(writer.run(cluster))
    phases: list[Phase] = []
    try:
        await asyncio.sleep(1)
        for _ in range(60):
            decided = decide(await _seen(cluster, records, "1"))
            # Presenting may show or not: etcd reads its key pair on every handshake.
            if decided.phase is not Phase.PRESENTING and (
                not phases or phases[-1] is not decided.phase
            ):
                phases.append(decided.phase)
            if decided.start is not None:
                records.signer = new_ca("new CA", datetime.now(UTC))
                records.bundle = bundle([records.bundle, records.signer.cert])
                records.handled = "1"
            elif decided.retire:
                records.bundle = bundle([records.signer.cert])
            elif decided.phase is Phase.DISTRIBUTING:
                for leaf in LEAVES:
                    records.write_leaf(leaf, None, records.bundle)
            elif decided.phase is Phase.RESTARTING:
                await _restart(cluster, records, await _next_to_restart(cluster, records))
            elif decided.phase is Phase.REISSUING:
                for leaf in LEAVES:
                    profile = APP if leaf == "client" else MEMBER
                    pair = issue(records.signer, profile, datetime.now(UTC), DAY)
                    records.write_leaf(leaf, pair, records.bundle)
            elif decided.phase is Phase.PRESENTING:
                await asyncio.sleep(0.2)
            else:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
    finally:
        writer.stop.set()
        await task
    print(
        f"rotation phases {[p.value for p in phases]}: {writer.acked} writes, "
        f"{len(writer.failed)} failed, {writer.reconnects} client reconnects, "
        f"{writer.leadership_retries} sent again after a leadership move"
    )
    assert phases == [
        Phase.DISTRIBUTING,  # start: the new CA beside the old
        Phase.RESTARTING,
        Phase.REISSUING,
        Phase.RETIRING,
        Phase.DISTRIBUTING,
        Phase.RESTARTING,
        Phase.IDLE,
    ], phases
    assert not writer.failed, writer.failed[:5]
    assert writer.acked > 100

    # Every member serves a certificate of the new CA, and trusts only it.
    served = await all_served(cluster.endpoints, records.app())
    assert all(d is not None and signed_by(pem_from_der(d), records.signer.cert) for d in served)
    assert load_bundle(records.read("server", "ca.crt")) == load_bundle(records.signer.cert)
    async with EtcdClient(cluster.config(tls=records.app())) as etcd:
        await etcd.put("after", "rotation")
    stale = TLSConfig(records.app().ca_cert, old_app.client_cert, old_app.client_key)
    async with EtcdClient(cluster.config(tls=stale, dial_timeout=2.0)) as etcd:
        with pytest.raises(EtcdError):
            await etcd.get("after")
    assert signed_by(old_app.client_cert, old.cert)
