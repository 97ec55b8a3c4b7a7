"""Rotating an `Auto` cluster's CA without downtime: which phase the rotation is in and what to
write next. Pure.

etcd reads its key pair on every handshake but its trusted CA file only at start, so a new CA
must be trusted by every member (restarted with old + new in its bundle) before anything
presents a certificate signed by it, and the old CA may leave the bundles only once nothing
presents its certificates any more. Every fact comes from a durable record:

- the CA Secret: the signing CA (tls.crt, tls.key), the trust bundle (ca.crt) and, in an
  annotation, the last rotation request it handled (written with the new CA, in one patch);
- each leaf Secret: who signed its certificate, and its ca.crt;
- each member pod: the digest of the bundle it started with (`Trust`, recorded by the pod
  builder), which makes it outdated for the planner's rollout when the bundle changes.

Phases, in the order `decide` checks them (each is resumable: the next round sees the same
records and carries on):

    Idle --(request or CA in its last fifth)--> Start: new CA signs; bundle = old + new
    Distributing: a leaf Secret's ca.crt differs from the bundle -> patch it (cert kept)
    Restarting:   a member pod started with another bundle -> the planner restarts it
    Reissuing:    a leaf is signed by the old CA -> re-issued by the new one
    Presenting:   members may still serve old certificates (volumes lag) -> wait
    Retiring:     bundle = new CA only; then Distributing and Restarting once more -> Idle
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from etcd_operator.tls.pki import BACKDATE, bundle, load_bundle

# A rotation starts on its own when this fraction of the CA's lifetime remains: with the
# default ten years, two years ahead, long before an expired CA stops the cluster.
CA_RENEW_FRACTION = 0.2
# Without a way to see what members serve: how long the kubelet may take to put a patched
# Secret into running pods (its sync period plus its cache's lifetime).
PROPAGATION = timedelta(minutes=2)


@dataclass(frozen=True)
class Trust:
    """The trust bundle a member pod starts with: a digest (recorded on the pod) and how many
    CAs it holds (several: a rotation is under way)."""

    digest: str
    authorities: int


def trust_of(bundles: Iterable[bytes]) -> Trust:
    """The trust of a pod that mounts these ca.crt bundles (peer and server Secrets): one
    digest of their union, so the same CAs give the same digest whatever the PEM layout."""
    merged = bundle(list(bundles))
    return Trust(hashlib.sha256(merged).hexdigest()[:16], len(load_bundle(merged)))


class Phase(StrEnum):
    IDLE = "Idle"
    DISTRIBUTING = "Distributing"
    RESTARTING = "Restarting"
    REISSUING = "Reissuing"
    PRESENTING = "Presenting"
    RETIRING = "Retiring"


class Trigger(StrEnum):
    REQUESTED = "Requested"  # the rotate-ca annotation holds a value not handled yet
    EXPIRING = "CAExpiring"  # the CA is in the last CA_RENEW_FRACTION of its lifetime


@dataclass(frozen=True)
class LeafState:
    """A leaf Secret as the rotation sees it."""

    by_signer: bool  # signed by the CA Secret's tls.crt
    bundle_current: bool  # its ca.crt is the CA Secret's ca.crt
    issued_at: datetime  # its certificate's notBefore


@dataclass(frozen=True)
class RotationSeen:
    """What the rotation decision reads (the CA Secret is valid)."""

    authorities: int  # CAs in the CA Secret's ca.crt
    ca_not_before: datetime  # the signing CA's validity
    ca_not_after: datetime
    leaves: Sequence[LeafState]  # leaf Secrets that exist and parse
    members_trust: bool  # no member pod started with another bundle than the leaves hold
    # Every member serves a certificate signed by the signing CA (None: not observable, e.g.
    # client TLS is not Auto; then PROPAGATION after the last issue stands in for it).
    served: bool | None
    requested: str | None  # the rotate-ca annotation's value on the cluster
    handled: str | None  # the request the CA Secret records as handled
    now: datetime
    # The renewal plan has leaves to write: a rotation starts only from a settled state.
    renewal_pending: bool = False


@dataclass(frozen=True)
class RotationDecision:
    phase: Phase
    message: str
    start: Trigger | None = None  # write a new CA (signs; bundle old + new; request handled)
    retire: bool = False  # write the bundle as the signing CA alone
    # Leaves signed by another CA than the signer may be re-issued now.
    reissue_old: bool = False
    # Only a clock change moves the rotation on (Presenting by PROPAGATION): look again then.
    recheck_at: datetime | None = None


def ca_due(not_before: datetime, not_after: datetime, now: datetime) -> bool:
    """Whether the CA is in the last CA_RENEW_FRACTION of its lifetime."""
    return now >= not_after - (not_after - not_before) * CA_RENEW_FRACTION


def decide(seen: RotationSeen) -> RotationDecision:
    several = seen.authorities > 1
    if any(not leaf.bundle_current for leaf in seen.leaves):
        what = "old and new CA" if several else "the CA alone"
        return RotationDecision(
            Phase.DISTRIBUTING, f"trust bundles of the certificate Secrets updated to {what}"
        )
    if not seen.members_trust:
        what = "old and new CA" if several else "only the new CA"
        return RotationDecision(Phase.RESTARTING, f"members restart one at a time to trust {what}")
    if several:
        if any(not leaf.by_signer for leaf in seen.leaves):
            return RotationDecision(
                Phase.REISSUING,
                "every member trusts the new CA: certificates re-issued by it",
                reissue_old=True,
            )
        waiting = _presenting(seen)
        if waiting is not None:
            return waiting
        return RotationDecision(
            Phase.RETIRING, "everything presents new-CA certificates: old CA dropped", retire=True
        )
    if seen.renewal_pending:
        return RotationDecision(Phase.IDLE, "certificates being issued")
    if seen.requested is not None and seen.requested != seen.handled:
        return RotationDecision(
            Phase.DISTRIBUTING,
            "rotation requested: a new CA, trusted beside the old one",
            start=Trigger.REQUESTED,
        )
    if ca_due(seen.ca_not_before, seen.ca_not_after, seen.now):
        return RotationDecision(
            Phase.DISTRIBUTING,
            f"the CA expires at {seen.ca_not_after.isoformat()}: a new CA, trusted beside it",
            start=Trigger.EXPIRING,
        )
    return RotationDecision(Phase.IDLE, "no rotation under way")


def _presenting(seen: RotationSeen) -> RotationDecision | None:
    if seen.served is True:
        return None
    if seen.served is False:
        return RotationDecision(
            Phase.PRESENTING, "waiting for every member to serve its new-CA certificate"
        )
    last = max((leaf.issued_at for leaf in seen.leaves), default=None)
    # notBefore is backdated: the issue itself was BACKDATE later.
    due = last + BACKDATE + PROPAGATION if last is not None else seen.now
    if seen.now >= due:
        return None
    return RotationDecision(
        Phase.PRESENTING,
        "waiting for the re-issued certificates to reach every member",
        recheck_at=due,
    )
