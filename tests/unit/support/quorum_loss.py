"""Quorum-loss worlds for the planner's property tests (branch survivor): what members know
alone when no member list answers, members whose volumes lost their logs, pods built with
`--force-new-cluster`, and the status record of a rebuild."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

from etcd_operator.naming import url_address
from etcd_operator.planner import EtcdMember, ForcedStart, LocalView, Observed, PodState

MODES = ["Manual", "FromSurvivor", "FromSurvivor", "FromLatestBackup"]


def with_quorum_loss(
    o: Observed, rnd: random.Random, noise: int, members: Sequence[EtcdMember], index: int
) -> Observed:
    """`o` with spec.recovery.quorumLoss drawn and, in some noisy worlds, the facts above."""
    o = dataclasses.replace(o, spec=dataclasses.replace(o.spec, quorum_loss=rnd.choice(MODES)))
    if noise == 0 or rnd.random() < 0.5:
        return o
    by_address = {url_address(u): n for n, u in o.expected_peer_urls.items()}
    slots = {
        m.id: n
        for m in members
        if (n := next((by_address.get(url_address(u)) for u in m.peer_urls), None)) is not None
    }
    pods = dict(o.pods)
    if rnd.random() < 0.5:  # every member's pod there and staying: only data decides
        for n in slots.values():
            pods[n] = dataclasses.replace(pods.get(n, PodState()), deleting=False)
    if rnd.random() < 0.6:  # volumes wiped: member-init refuses these members
        for n, p in o.pods.items():
            if rnd.random() < 0.5:
                pods[n] = dataclasses.replace(p, data_lost=True)
    if members and rnd.random() < 0.5:  # no member list answers: quorum is lost
        o = dataclasses.replace(o, members=None, member_health={}, leader_id=None)
    views: dict[str, LocalView] = {}
    if o.members is None:
        for m in members:
            n = slots.get(m.id)
            pod = pods.get(n) if n is not None else None
            if n is None or pod is None or pod.data_lost or rnd.random() < 0.1:
                continue
            term = rnd.randint(3, 4)
            raft_index = index - rnd.choice([0, 0, 7, 300])
            views[n] = LocalView(m.id, tuple(members), term, raft_index, raft_index)
    if pods and rnd.random() < 0.15:
        n = rnd.choice(sorted(pods))
        pods[n] = dataclasses.replace(pods[n], forced=True)
    record = None
    if slots and rnd.random() < 0.2:
        member_id = rnd.choice(sorted(slots))
        record = ForcedStart(slots[member_id], member_id, done=rnd.random() < 0.5)
    return dataclasses.replace(o, pods=pods, local_views=views, forced_start=record)
