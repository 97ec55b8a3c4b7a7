"""Turning TLS on in a running cluster, one member at a time, without an outage.

Which scheme a member's peers use to reach it is recorded in etcd itself: its registered peer
URL, changed only by `MemberUpdate`. Its pod must serve that scheme. So peer TLS is switched on
in two passes, each one member at a time with the rollout's safety rules:

1. The spec change rolls every pod (its template hash changed): each comes back holding the peer
   certificate and trusting the peer CA, still serving plaintext peers, as its URL says.
2. Once every pod holds the certificate, one member's peer URL is updated to https
   (`UpdatePeerURL`); its pod now serves the wrong scheme and is restarted to serve https. The
   next member follows when that one is healthy again.

A member whose pod serves another scheme than its URL stays in the cluster meanwhile: etcd
falls back to the connections the member opens itself. A kill between the update and the
restart is resumed from the same facts (URL https, pod serving http: restart it). Members whose
data is in an emptyDir cannot restart as themselves: they are replaced in turn, and each comes
back as a new member added with an https URL.

Clients: while any member pod does not serve TLS yet, pods serve plaintext clients beside TLS
ones (so the operator and applications keep one working scheme for every member); once all do,
pods that still serve plaintext without `allowPlaintext` are restarted once more.
"""

from __future__ import annotations

from dataclasses import replace

from etcd_operator.naming import MemberTLS, url_address
from etcd_operator.planner.model import EtcdMember, Observed, PodState
from etcd_operator.planner.rollout import restart_in_turn
from etcd_operator.planner.steps import (
    Bootstrap,
    CreatePod,
    Decision,
    ForceNewCluster,
    Reason,
    UpdatePeerURL,
    UpgradeMember,
    wait,
)
from etcd_operator.planner.view import View


def with_scheme(url: str, https: bool) -> str:
    return f"{'https' if https else 'http'}://{url_address(url)}"


def serves_plaintext_clients(tls: MemberTLS) -> bool:
    return not tls.client or tls.client_plaintext


def _member_pods(o: Observed, but: str | None = None) -> list[PodState]:
    return [p for n, p in o.pods.items() if n in o.expected_peer_urls and n != but]


def _registered(o: Observed, name: str) -> EtcdMember | None:
    """The member list's entry for `name` (matched by address, whatever its scheme)."""
    address = url_address(o.expected_peer_urls[name])
    same = [m for m in o.members or () if any(url_address(u) == address for u in m.peer_urls)]
    return same[0] if len(same) == 1 else None


def peers_trust_tls(o: Observed, but: str | None = None) -> bool:
    """Every member pod (but `but`) holds the peer certificate and trusts the peer CA, so a
    member serving peers over https is reachable from all of them."""
    return all(p.peer_tls for p in _member_pods(o, but))


def new_member_peer_url(o: Observed, name: str) -> str:
    """The peer URL a new member is added with: https once every pod can reach it so."""
    https = o.spec.peer_tls and peers_trust_tls(o, but=name)
    return with_scheme(o.expected_peer_urls[name], https)


def tls_for(o: Observed, name: str) -> MemberTLS:
    """What a new pod of `name` must serve: peers by its registered URL's scheme (else by what
    its pod served, else as a new member would be added), clients as the spec says, plus
    plaintext while another member pod does not serve TLS to clients yet."""
    spec = o.spec
    registered = _registered(o, name)
    pod = o.pods.get(name)
    if registered is not None:
        peer = registered.peer_https
    elif pod is not None:
        peer = pod.tls.peer
    elif o.members is None:
        # Nobody answers and its pod is gone: its URL is unknown. Like the others' is the best
        # guess; a wrong one still joins (etcd falls back to the connections the member opens
        # itself) and is restarted with the right scheme once the member list answers.
        peer = spec.peer_tls and all(p.tls.peer for p in _member_pods(o, but=name))
    else:
        peer = spec.peer_tls and peers_trust_tls(o, but=name)  # a member not added yet
    pending = any(not p.tls.client for p in _member_pods(o, but=name))
    plaintext = spec.client_tls and (spec.client_plaintext or pending)
    return MemberTLS(peer=peer, client=spec.client_tls, client_plaintext=plaintext)


def with_tls(o: Observed, decision: Decision) -> Decision:
    """`decision` with the schemes its new pods serve filled in (the one place they are chosen)."""
    step = decision.step
    match step:
        case Bootstrap():
            step = replace(step, tls=o.spec.member_tls)
        case CreatePod() | UpgradeMember() | ForceNewCluster():
            step = replace(step, tls=tls_for(o, step.member))
        case _:
            return decision
    return Decision(step, decision.reason, decision.message)


def _serves_wrong_schemes(o: Observed, m: EtcdMember, pod: PodState, name: str) -> bool:
    want = tls_for(o, name)
    peer_switch_due = o.spec.peer_tls and not m.peer_https
    if o.spec.empty_dir and peer_switch_due and peers_trust_tls(o):
        return True  # replaced, it comes back as a new member added over https
    if pod.tls.peer != m.peer_https or (want.client and not pod.tls.client):
        return True
    # Plaintext clients are dropped now only if the peer switch will not restart it anyway.
    extra_plaintext = serves_plaintext_clients(pod.tls) and not serves_plaintext_clients(want)
    return extra_plaintext and not peer_switch_due


def restart_wrong_listeners(v: View) -> Decision | None:
    """Voters whose pods serve another peer scheme than their registered URL, lack client TLS
    the spec asks for, or still serve plaintext clients nobody needs: restarted in turn."""
    o = v.observed
    stale = [
        (m, ver)
        for m in v.voters
        if (name := v.name_of(m)) is not None
        and (pod := o.pods.get(name)) is not None
        and _serves_wrong_schemes(o, m, pod, name)
        and (ver := v.running_version(m)) is not None
    ]
    if not stale:
        return None
    return restart_in_turn(
        v,
        stale,
        o.spec.version,
        Reason.TLS_RESTART,
        lambda name, _: f"restarting {name} to serve the schemes of its URLs and spec.tls",
    )


def switch_peer_urls(v: View) -> Decision | None:
    """With every pod trusting the peer CA, move one plaintext member to an https peer URL."""
    o = v.observed
    if not o.spec.peer_tls or o.spec.empty_dir:
        return None  # emptyDir members switch by being replaced (restart_wrong_listeners)
    plain = [m for m in v.voters if not m.peer_https and v.name_of(m) is not None]
    if not plain:
        return None
    if not peers_trust_tls(o):
        return wait(
            Reason.PEERS_WITHOUT_TLS,
            "peer TLS waits until every member pod holds the peer certificate",
        )
    followers = [m for m in plain if m.id != v.leader_id]
    target = followers[-1] if followers else plain[0]
    name = v.label(target)
    url = with_scheme(o.expected_peer_urls[name], True)
    return Decision(
        UpdatePeerURL(name, target.id, url),
        Reason.UPDATE_PEER_URL,
        f"peers reach {name} over TLS from now on ({url}); its pod restarts next to serve it",
    )
