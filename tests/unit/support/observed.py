"""Concise builders of `Observed` values for planner tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from etcd_operator.naming import MAX_REPLICAS, member_name
from etcd_operator.planner import (
    ClusterRef,
    DesiredSpec,
    EtcdMember,
    MemberHealth,
    Observed,
    PodState,
    PvcState,
)

NAME = "etcd"
UID = "uid-1"
VERSION = "3.5.17"
INDEX = 50_000
T = TypeVar("T")


def name(ordinal: int) -> str:
    return member_name(NAME, ordinal)


def url(ordinal: int) -> str:
    return f"http://{name(ordinal)}.{NAME}.ns.svc:2380"


URLS = {name(i): url(i) for i in range(MAX_REPLICAS)}


def mid(ordinal: int) -> int:
    """Member ids in tests: 0x100 + ordinal, so that ids and ordinals differ."""
    return 0x100 + ordinal


def member(ordinal: int, *, learner: bool = False, started: bool = True) -> EtcdMember:
    return EtcdMember(
        mid(ordinal),
        name(ordinal) if started else "",
        (url(ordinal),),
        (url(ordinal).replace("2380", "2379"),) if started else (),
        learner,
    )


def claim(ordinal: int, *, recorded: bool = True, **changes: Any) -> PvcState:
    """The claim of `ordinal` as the operator leaves it: this cluster's UID and, once its
    member started, that member's ID recorded."""
    return dataclasses.replace(
        PvcState(
            claim=name(ordinal), cluster_uid=UID, member_id=mid(ordinal) if recorded else None
        ),
        **changes,
    )


def health(*, leader: bool = False, index: int = INDEX, **kw: Any) -> MemberHealth:
    return MemberHealth(
        **{
            "reachable": True,
            "healthy": True,
            "version": VERSION,
            "raft_index": index,
            "applied_index": index,
            "is_leader": leader,
            **kw,
        }
    )


def cluster(
    n: int = 3,
    *,
    replicas: int | None = None,
    leader: int = 0,
    version: str = VERSION,
    **spec: Any,
) -> Observed:
    """A bootstrapped cluster of `n` healthy voters `etcd-0..n-1` with `leader` leading."""
    return Observed(
        cluster=ClusterRef(NAME, "ns", UID),
        generation=1,
        spec=DesiredSpec(replicas=n if replicas is None else replicas, version=version, **spec),
        bootstrapped=True,
        members=tuple(member(i) for i in range(n)),
        expected_peer_urls=URLS,
        member_health={mid(i): health(leader=i == leader) for i in range(n)},
        leader_id=mid(leader),
        pods={name(i): PodState(version=VERSION) for i in range(n)},
        pvcs={name(i): claim(i) for i in range(n)},
        status_version=VERSION,
    )


def fresh(replicas: int = 3, **spec: Any) -> Observed:
    """A new EtcdCluster: nothing exists yet."""
    return Observed(
        cluster=ClusterRef(NAME, "ns", UID),
        generation=1,
        spec=DesiredSpec(replicas=replicas, version=VERSION, **spec),
        bootstrapped=False,
        members=None,
        expected_peer_urls=URLS,
    )


def replace(o: Observed, **changes: Any) -> Observed:
    return dataclasses.replace(o, **changes)


def spec(o: Observed, **changes: Any) -> Observed:
    return dataclasses.replace(o, spec=dataclasses.replace(o.spec, **changes))


def pod(o: Observed, ordinal: int, **changes: Any) -> Observed:
    """Change (or create) the pod of `ordinal`."""
    pods = dict(o.pods)
    pods[name(ordinal)] = dataclasses.replace(pods.get(name(ordinal), PodState()), **changes)
    return dataclasses.replace(o, pods=pods)


def without(mapping: Mapping[str, T], key: str) -> dict[str, T]:
    return {k: v for k, v in mapping.items() if k != key}


def without_pod(o: Observed, ordinal: int) -> Observed:
    return dataclasses.replace(o, pods={k: v for k, v in o.pods.items() if k != name(ordinal)})


def pvc(o: Observed, ordinal: int, **changes: Any) -> Observed:
    """Change (or create, fresh: no member recorded yet) the current claim of `ordinal`."""
    pvcs = dict(o.pvcs)
    before = pvcs.get(name(ordinal), claim(ordinal, recorded=False))
    pvcs[name(ordinal)] = dataclasses.replace(before, **changes)
    return dataclasses.replace(o, pvcs=pvcs)


def without_pvc(o: Observed, ordinal: int) -> Observed:
    return dataclasses.replace(o, pvcs={k: v for k, v in o.pvcs.items() if k != name(ordinal)})


def unhealthy(o: Observed, ordinal: int) -> Observed:
    """The member answers nothing (process down or partitioned) though its pod exists."""
    hs = dict(o.member_health)
    hs[mid(ordinal)] = MemberHealth(reachable=False, healthy=False)
    return pod(dataclasses.replace(o, member_health=hs), ordinal, ready=False)


def set_health(o: Observed, ordinal: int, **changes: Any) -> Observed:
    hs = dict(o.member_health)
    hs[mid(ordinal)] = dataclasses.replace(hs.get(mid(ordinal), health()), **changes)
    return dataclasses.replace(o, member_health=hs)


def add_member(o: Observed, m: EtcdMember, h: MemberHealth | None = None) -> Observed:
    assert o.members is not None
    hs = dict(o.member_health)
    if h is not None:
        hs[m.id] = h
    return dataclasses.replace(o, members=(*o.members, m), member_health=hs)


def drop_member(o: Observed, ordinal: int) -> Observed:
    assert o.members is not None
    return dataclasses.replace(
        o,
        members=tuple(m for m in o.members if m.id != mid(ordinal)),
        member_health={k: v for k, v in o.member_health.items() if k != mid(ordinal)},
    )
