"""Which certificates to (re)issue: the CA before anything it signs, a leaf only when it is
missing, broken, from another CA, saying other names, too long-lived or due; never a
silent new CA while certificates of the old one are in use."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.naming import member_names
from etcd_operator.tls.pki import BACKDATE, CertFacts, LeafProfile
from etcd_operator.tls.renewal import (
    OPERATOR_COMMON_NAME,
    CAState,
    Issue,
    LeafKind,
    LeafSeen,
    Plan,
    Why,
    leaf_profile,
    plan,
    wanted_leaves,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DURATION = timedelta(hours=2160)
RENEW = timedelta(hours=720)
PROFILES = {k: leaf_profile(k, "demo", "ns", "cluster.local") for k in LeafKind}


def _fresh(profile: LeafProfile, issued: datetime = NOW, serial: int = 1) -> LeafSeen:
    cert = CertFacts(
        serial=serial,
        common_name=profile.common_name,
        dns_names=frozenset(profile.dns_names),
        ip_addresses=frozenset(profile.ip_addresses),
        server=profile.server,
        client=profile.client,
        not_before=issued - BACKDATE,
        not_after=issued + DURATION,
    )
    return LeafSeen(cert, signed_by_ca=True, bundle_current=True)


def _plan(
    leaves: dict[LeafKind, LeafSeen | None], ca: CAState = CAState.VALID, now: datetime = NOW
) -> Plan:
    return plan(ca, leaves, PROFILES, now=now, duration=DURATION, renew_before=RENEW)


def test_a_new_cluster_gets_its_ca_first_then_every_leaf() -> None:
    decided = _plan({}, CAState.MISSING)
    assert decided.create_ca
    assert decided.issue == tuple(Issue(k, Why.MISSING) for k in LeafKind)
    assert decided.problem is None


def test_a_lost_ca_is_not_replaced_while_certificates_it_signed_exist() -> None:
    decided = _plan({LeafKind.PEER: _fresh(PROFILES[LeafKind.PEER])}, CAState.MISSING)
    assert not decided.create_ca and decided.issue == ()
    assert decided.problem is not None and "peer" in decided.problem


def test_an_invalid_ca_stops_everything() -> None:
    decided = plan(
        CAState.INVALID,
        {},
        PROFILES,
        now=NOW,
        duration=DURATION,
        renew_before=RENEW,
        ca_problem="tls.key does not belong",
        ca_secret="Secret demo-ca",
    )
    assert decided == Plan(problem="Secret demo-ca: tls.key does not belong")


def test_fresh_leaves_are_kept_and_the_next_round_is_due_at_renewal() -> None:
    leaves: dict[LeafKind, LeafSeen | None] = {k: _fresh(p) for k, p in PROFILES.items()}
    decided = _plan(leaves)
    assert decided.issue == ()
    assert decided.renew_at == NOW + DURATION - RENEW


def test_each_defect_has_its_reason() -> None:
    peer = PROFILES[LeafKind.PEER]
    good = _fresh(peer)
    assert good.cert is not None
    cases = {
        Why.MISSING: None,
        Why.INVALID: LeafSeen(cert=None),
        Why.CA_CHANGED: replace(good, signed_by_ca=False),
        Why.NAMES_CHANGED: replace(good, cert=replace(good.cert, dns_names=frozenset())),
        Why.DURATION_CHANGED: replace(
            good, cert=replace(good.cert, not_after=good.cert.not_after + timedelta(hours=1))
        ),
        Why.EXPIRING: _fresh(peer, issued=NOW - DURATION + RENEW),
    }
    for why, seen in cases.items():
        assert _plan({LeafKind.PEER: seen}).issue[:1] == (Issue(LeafKind.PEER, why),), why
    stale_bundle = replace(good, bundle_current=False)
    assert _plan({LeafKind.PEER: stale_bundle}).issue[0].why is Why.BUNDLE_CHANGED


def test_peer_and_server_certificates_cover_every_member_the_cluster_may_have() -> None:
    for kind in (LeafKind.PEER, LeafKind.SERVER):
        names = set(PROFILES[kind].dns_names)
        for member in member_names("demo"):
            assert f"{member}.demo.ns.svc.cluster.local" in names
            assert f"{member}.demo.ns.svc" in names
        assert "*.demo.ns.svc.cluster.local" in names
        assert PROFILES[kind].server and PROFILES[kind].client
    server = PROFILES[LeafKind.SERVER]
    assert {"demo-client", "demo-client.ns", "demo-client.ns.svc.cluster.local"} <= set(
        server.dns_names
    )
    assert "localhost" in server.dns_names and server.ip_addresses == ("127.0.0.1",)
    assert PROFILES[LeafKind.OPERATOR].common_name == OPERATOR_COMMON_NAME
    assert PROFILES[LeafKind.CLIENT].common_name != OPERATOR_COMMON_NAME
    assert not PROFILES[LeafKind.CLIENT].server


def test_which_leaves_each_mode_wants() -> None:
    assert wanted_leaves(False, False) == ()
    assert wanted_leaves(True, False) == (LeafKind.PEER,)
    assert set(wanted_leaves(False, True)) == {LeafKind.SERVER, LeafKind.CLIENT, LeafKind.OPERATOR}


_ages = st.integers(min_value=0, max_value=int(DURATION.total_seconds()) + 3600)


@st.composite
def _seen(draw: st.DrawFn, kind: LeafKind) -> LeafSeen | None:
    shape = draw(st.sampled_from(["missing", "broken", "cert"]))
    if shape == "missing":
        return None
    if shape == "broken":
        return LeafSeen(cert=None)
    seen = _fresh(PROFILES[kind], issued=NOW - timedelta(seconds=draw(_ages)))
    assert seen.cert is not None
    cert = seen.cert
    if draw(st.booleans()):
        cert = replace(cert, common_name=draw(st.sampled_from(["demo", "root", "x"])))
    if draw(st.booleans()):
        cert = replace(cert, not_after=cert.not_after + timedelta(hours=draw(st.integers(-5, 5))))
    return LeafSeen(cert, signed_by_ca=draw(st.booleans()), bundle_current=draw(st.booleans()))


@st.composite
def _leaves(draw: st.DrawFn) -> dict[LeafKind, LeafSeen | None]:
    return {k: draw(_seen(k)) for k in LeafKind}


def _healthy(seen: LeafSeen | None, profile: LeafProfile) -> bool:
    if seen is None or seen.cert is None:
        return False
    cert = seen.cert
    return (
        seen.signed_by_ca
        and seen.bundle_current
        and cert.matches(profile)
        and cert.not_after - cert.not_before <= DURATION + BACKDATE + timedelta(seconds=1)
        and cert.not_after - RENEW > NOW
    )


@given(_leaves())
def test_a_leaf_is_reissued_exactly_when_it_is_not_healthy(
    leaves: dict[LeafKind, LeafSeen | None],
) -> None:
    decided = _plan(leaves)
    issued = {i.kind for i in decided.issue}
    for kind, profile in PROFILES.items():
        assert (kind in issued) == (not _healthy(leaves[kind], profile)), kind
    # A leaf whose bundle alone changed keeps its certificate, and its renewal time.
    patched = {i.kind for i in decided.issue if i.why is Why.BUNDLE_CHANGED}
    kept = [s.cert for k, s in leaves.items() if (k not in issued or k in patched) and s and s.cert]
    if kept:
        assert decided.renew_at == min(c.not_after - RENEW for c in kept)
        assert decided.renew_at is not None and decided.renew_at > NOW
    else:
        assert decided.renew_at is None


@given(_leaves(), st.sampled_from(list(CAState)))
def test_carrying_out_a_plan_leaves_nothing_to_do(
    leaves: dict[LeafKind, LeafSeen | None], ca: CAState
) -> None:
    decided = _plan(leaves, ca)
    if decided.problem is not None:
        assert decided.issue == () and not decided.create_ca
        return
    after = dict(leaves)
    if decided.create_ca:  # a new CA: nothing else can be signed by it
        after = {k: None for k in leaves}
    for job in decided.issue:
        after[job.kind] = _fresh(PROFILES[job.kind], serial=2)
    again = _plan(after, CAState.VALID)
    assert again.issue == () and again.problem is None and not again.create_ca


@given(_leaves(), st.data())
def test_during_a_rotation_a_leaf_of_the_old_ca_is_reissued_only_when_allowed(
    leaves: dict[LeafKind, LeafSeen | None], data: st.DataObject
) -> None:
    old = {
        k: replace(s, by_signer=False) if s and s.signed_by_ca and data.draw(st.booleans()) else s
        for k, s in leaves.items()
    }
    reissue_old = data.draw(st.booleans())
    decided = plan(
        CAState.VALID,
        old,
        PROFILES,
        now=NOW,
        duration=DURATION,
        renew_before=RENEW,
        reissue_old=reissue_old,
    )
    why = {i.kind: i.why for i in decided.issue}
    for kind, seen in old.items():
        if seen is None or seen.cert is None or seen.by_signer:
            continue
        if reissue_old:
            assert why.get(kind) is Why.CA_ROTATED
        else:
            # Held: its certificate stays, only a stale bundle is rewritten beside it.
            expected = None if seen.bundle_current else Why.BUNDLE_CHANGED
            assert why.get(kind) is expected
