"""Authentication rules: etcd's auth switch follows `spec.auth.enabled`, decided from etcd's own
record of it (`AuthState.enabled`), never from whether a call happens to succeed now."""

from __future__ import annotations

from etcd_operator.planner.model import Observed
from etcd_operator.planner.steps import Decision, DisableAuth, EnableAuth, Reason, degraded
from etcd_operator.planner.view import View


def auth_unusable(o: Observed) -> Decision | None:
    """etcd enforces auth and the operator cannot authenticate: it sees neither members nor
    health, so it must not judge them (a blind round would read as lost quorum). Nothing is
    done until the Secret is fixed."""
    auth = o.auth
    if not auth.enabled:
        return None
    if auth.secret_problem is not None:
        return degraded(
            Reason.AUTH_SECRET_INVALID,
            f"etcd enforces authentication and root's password cannot be read:"
            f" {auth.secret_problem}",
        )
    if auth.rejected is not None:
        return degraded(
            Reason.AUTH_REJECTED,
            f"etcd refuses root's password from Secret {auth.secret} ({auth.rejected}): root"
            " has another password in etcd; put that one in the Secret",
        )
    return None


def auth_change(v: View) -> Decision | None:
    """Turn auth on or off once every member is healthy (the rules before this one ensure it):
    a cluster-wide change like any other, one at a time."""
    auth = v.observed.auth
    if auth.enabled is None or auth.wanted == auth.enabled:
        return None
    if not auth.wanted:
        return Decision(DisableAuth(), Reason.DISABLE_AUTH, "disabling authentication")
    if auth.secret_problem is not None:
        return degraded(
            Reason.AUTH_SECRET_INVALID,
            f"authentication stays off: {auth.secret_problem}",
        )
    return Decision(
        EnableAuth(),
        Reason.ENABLE_AUTH,
        f"enabling authentication: user root, password from Secret {auth.secret}",
    )
