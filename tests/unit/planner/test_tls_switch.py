"""Turning TLS on in a running cluster: in the simulated world (which raises when a member
serves peers over https before every pod trusts it, when no client scheme reaches every member,
when quorum is lost, or when a pod advertises another URL than its member was added with) and
one example per rule."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from etcd_operator.naming import MemberTLS
from etcd_operator.planner import (
    Degraded,
    InSync,
    PodState,
    Reason,
    UpdatePeerURL,
    UpgradeMember,
    decide,
)
from etcd_operator.planner.tls_switch import tls_for
from unit.support.observed import URLS, cluster, member, mid, name, pod, replace, spec
from unit.support.world import World

TLS_TEMPLATE = 1  # turning TLS on changes the pods' template hash


def _switch(w: World, *, peer: bool, client: bool, plaintext: bool = False) -> None:
    w.peer_tls, w.client_tls, w.client_plaintext = peer, client, plaintext
    w.template += TLS_TEMPLATE
    w.history.clear()
    w.restarted.clear()


def _run(w: World, crash_at: int | None = None) -> None:
    for _ in range(400):
        d = w.round(crash_after=crash_at)
        if isinstance(d.step, InSync):
            break
    w.converge()
    w.assert_settled()
    assert not any(isinstance(s, Degraded) for s in w.history), w.history


@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("crash_at", [None, 0, 1])
def test_peer_and_client_tls_switch_on_restarting_each_member_twice(
    size: int, crash_at: int | None
) -> None:
    """Pass one gives every pod the certificates (serving plaintext peers, both client
    schemes); pass two moves each member's URL to https and restarts it to serve it."""
    w = World(replicas=size)
    w.converge()
    ids = {m.slot: m.id for m in w.voters()}
    _switch(w, peer=True, client=True)
    _run(w, crash_at)
    assert {m.slot: m.id for m in w.voters()} == ids  # every member kept its data
    if size == 1 and crash_at is not None:
        # Killed between taking the only pod down and starting it again, nobody answers: its
        # new pod guesses the peer scheme, and a wrong guess costs one more restart.
        assert set(Counter(w.restarted).values()) <= {2, 3}
    else:
        assert Counter(w.restarted) == {n: 2 for n in ids}
    updates = [s for s in w.history if isinstance(s, UpdatePeerURL)]
    assert sorted({u.member for u in updates}) == sorted(ids)


@pytest.mark.parametrize("crash_at", [None, 0])
def test_client_tls_alone_keeps_plaintext_until_every_member_serves_tls(
    crash_at: int | None,
) -> None:
    """Every member but the last restarted in the first pass serves plaintext too (the last
    one comes up when all others serve TLS), then those drop it in a second restart."""
    w = World(replicas=3)
    w.converge()
    _switch(w, peer=False, client=True)
    _run(w, crash_at)
    assert sorted(Counter(w.restarted).values()) == [1, 2, 2]
    assert not any(isinstance(s, UpdatePeerURL) for s in w.history)


def test_allow_plaintext_restarts_each_member_once() -> None:
    w = World(replicas=3)
    w.converge()
    _switch(w, peer=False, client=True, plaintext=True)
    _run(w)
    assert Counter(w.restarted) == {name: 1 for name in w.pods}


@pytest.mark.parametrize("size", [3, 5])
def test_empty_dir_members_are_replaced_and_come_back_over_https(size: int) -> None:
    w = World(replicas=size, empty_dir=True)
    w.converge()
    before = {m.slot: m.id for m in w.voters()}
    _switch(w, peer=True, client=True)
    _run(w)
    assert not any(isinstance(s, UpdatePeerURL) for s in w.history)
    assert all(m.id != before[m.slot] for m in w.voters())


def test_scaling_out_in_the_middle_of_a_switch_adds_members_every_pod_can_reach() -> None:
    w = World(replicas=3)
    w.converge()
    _switch(w, peer=True, client=True)
    for _ in range(6):
        w.round()
    w.replicas = 5
    _run(w)


def test_a_member_killed_during_the_switch_comes_back_with_the_scheme_of_its_url() -> None:
    w = World(replicas=3)
    w.converge()
    _switch(w, peer=True, client=False)
    while not any(isinstance(s, UpdatePeerURL) for s in w.history):
        w.round()
    updated = next(s for s in w.history if isinstance(s, UpdatePeerURL)).member
    w.fault_kill_pod(updated)
    _run(w)


# --- one example per rule ------------------------------------------------------------------


def test_a_member_moves_to_https_only_when_every_pod_trusts_the_peer_ca() -> None:
    o = spec(cluster(3), peer_tls=True)
    o = replace(o, pods={n: dataclasses.replace(p, peer_tls=True) for n, p in o.pods.items()})
    d = decide(o)
    # Followers first, from the highest ordinal; the leader (etcd-0) last.
    assert d.step == UpdatePeerURL(name(2), mid(2), URLS[name(2)].replace("http:", "https:"))
    missing = pod(o, 1, peer_tls=False)
    assert decide(missing).reason is Reason.PEERS_WITHOUT_TLS


def test_a_pod_serving_another_peer_scheme_than_its_url_is_restarted_with_that_scheme() -> None:
    o = spec(cluster(3), peer_tls=True)
    o = replace(o, pods={n: dataclasses.replace(p, peer_tls=True) for n, p in o.pods.items()})
    https = dataclasses.replace(member(2), peer_urls=(URLS[name(2)].replace("http:", "https:"),))
    o = replace(o, members=(member(0), member(1), https))
    d = decide(o)
    assert isinstance(d.step, UpgradeMember) and d.step.member == name(2)
    assert d.reason is Reason.TLS_RESTART
    assert d.step.tls.peer


def test_members_are_recognised_by_address_whatever_the_scheme_of_their_url() -> None:
    o = spec(cluster(3), peer_tls=True)
    o = replace(o, expected_peer_urls={n: u.replace("http:", "https:") for n, u in URLS.items()})
    assert decide(o).reason not in (Reason.FOREIGN_MEMBER, Reason.DUPLICATE_MEMBER)


def test_new_pods_serve_plaintext_clients_while_another_member_does_not_serve_tls() -> None:
    o = spec(cluster(3), client_tls=True)
    tls_only = MemberTLS(client=True)
    assert tls_for(o, name(0)) == MemberTLS(client=True, client_plaintext=True)
    done = replace(o, pods={n: PodState(tls=tls_only) for n in o.pods})
    assert tls_for(done, name(0)) == tls_only
