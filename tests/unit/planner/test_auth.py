"""The auth rules: etcd's auth switch follows spec.auth.enabled, one calm step at a time, and a
root that cannot get in stops every judgement."""

from __future__ import annotations

import dataclasses

from etcd_operator.planner import (
    AddLearner,
    AuthState,
    Degraded,
    DisableAuth,
    EnableAuth,
    InSync,
    Observed,
    Reason,
    Wait,
    decide,
)
from unit.support.observed import cluster, fresh, replace, spec, unhealthy

MISSING = "Secret ns/etcd-root does not exist"


def auth(o: Observed, **changes: object) -> Observed:
    base = AuthState(wanted=True, enabled=False, secret="etcd-root")
    return replace(o, auth=dataclasses.replace(base, **changes))


def test_auth_is_enabled_once_the_cluster_is_formed_and_calm() -> None:
    d = decide(auth(cluster(3)))
    assert d.step == EnableAuth()
    assert d.reason is Reason.ENABLE_AUTH
    assert "Secret etcd-root" in d.message


def test_auth_waits_for_every_member_to_be_healthy() -> None:
    assert isinstance(decide(auth(unhealthy(cluster(3), 2))).step, Wait)


def test_auth_is_enabled_before_scaling_and_scaling_follows() -> None:
    three_to_four = spec(cluster(3), replicas=4)
    assert decide(auth(three_to_four)).step == EnableAuth()
    assert isinstance(decide(auth(three_to_four, enabled=True)).step, AddLearner)


def test_nothing_to_do_when_etcd_matches_the_spec_or_cannot_say() -> None:
    assert decide(auth(cluster(3), enabled=True)).step == InSync()
    assert decide(auth(cluster(3), wanted=False)).step == InSync()
    assert decide(auth(cluster(3), enabled=None)).step == InSync()


def test_auth_is_disabled_when_the_spec_turns_it_off() -> None:
    d = decide(auth(cluster(3), wanted=False, enabled=True))
    assert d.step == DisableAuth()
    assert d.reason is Reason.DISABLE_AUTH


def test_a_missing_secret_keeps_auth_off_and_says_which_secret() -> None:
    d = decide(auth(cluster(3), secret_problem=MISSING))
    assert d.step == Degraded(Reason.AUTH_SECRET_INVALID)
    assert MISSING in d.message


def test_a_root_that_cannot_get_in_stops_every_judgement() -> None:
    """etcd enforces auth, so a round without working credentials sees no member: it must not
    read that as lost quorum (nor act on it)."""
    blind = replace(cluster(3), members=None, member_health={}, leader_id=None)
    d = decide(auth(blind, enabled=True, secret_problem=MISSING))
    assert d.step == Degraded(Reason.AUTH_SECRET_INVALID)
    assert MISSING in d.message
    d = decide(auth(blind, enabled=True, rejected="authentication failed"))
    assert d.step == Degraded(Reason.AUTH_REJECTED)
    assert "Secret etcd-root" in d.message and "authentication failed" in d.message
    # Spec turned auth off, but root is still needed to turn it off.
    d = decide(auth(blind, wanted=False, enabled=True, secret_problem=MISSING))
    assert d.step == Degraded(Reason.AUTH_SECRET_INVALID)


def test_a_new_cluster_bootstraps_before_auth_is_enabled() -> None:
    d = decide(auth(fresh(3)))
    assert d.reason is Reason.BOOTSTRAP
