"""Which certificates of a cluster to issue or re-issue, and when to look again: pure.

Inputs are facts read from the Secrets (`inspect_*` turns Secret data into them); the output
is a `Plan` the shell carries out in order: the CA first (stored before anything is signed
with it), then each leaf. A kill between any two writes leaves a state this decision
finishes: a leaf can only exist once the CA that signed it was stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from etcd_operator.naming import (
    client_service_name,
    client_tls_secret_name,
    member_names,
    operator_tls_secret_name,
    peer_service_name,
    peer_tls_secret_name,
    server_tls_secret_name,
)
from etcd_operator.tls.material import CA_CERT, read_material
from etcd_operator.tls.pki import (
    BACKDATE,
    CertFacts,
    InvalidMaterial,
    LeafProfile,
    facts,
    is_ca,
    signed_by,
)

# The operator's client certificate: with etcd auth on, a client certificate's common name
# is its etcd user, so the operator acts as root.
OPERATOR_COMMON_NAME = "root"
# Slack when comparing a certificate's lifetime with certificateDuration (clock rounding).
_LIFETIME_SLACK = timedelta(seconds=1)


class LeafKind(StrEnum):
    PEER = "peer"  # between members: serverAuth and clientAuth
    SERVER = "server"  # the members' serving certificate on the client port
    CLIENT = "client"  # for applications
    OPERATOR = "operator"  # the operator's own client certificate


class Why(StrEnum):
    """Why a leaf is (re)issued."""

    MISSING = "Missing"
    INVALID = "Invalid"
    CA_CHANGED = "CAChanged"  # not signed by any CA of the bundle
    CA_ROTATED = "CARotated"  # signed by a CA of the bundle that no longer signs (rotation)
    NAMES_CHANGED = "NamesChanged"  # subject, names or usages differ from what it must say
    DURATION_CHANGED = "DurationChanged"  # lives longer than certificateDuration now allows
    EXPIRING = "Expiring"  # less than renewBefore remains
    # Only its ca.crt differs from the CA Secret's bundle: that key alone is rewritten.
    BUNDLE_CHANGED = "BundleChanged"


@dataclass(frozen=True)
class LeafSeen:
    """A leaf Secret as it exists. `cert` None: its material is missing or broken."""

    cert: CertFacts | None
    signed_by_ca: bool = False  # by some CA of the bundle
    bundle_current: bool = False
    by_signer: bool = True  # by the CA that signs now (tls.crt of the CA Secret)


class CAState(StrEnum):
    MISSING = "Missing"
    VALID = "Valid"
    INVALID = "Invalid"


@dataclass(frozen=True)
class Issue:
    kind: LeafKind
    why: Why


@dataclass(frozen=True)
class Plan:
    create_ca: bool = False
    issue: tuple[Issue, ...] = ()
    # Something only a human can fix; nothing is written while it holds.
    problem: str | None = None
    # When the earliest kept leaf is due for renewal (None: nothing kept).
    renew_at: datetime | None = None


def wanted_leaves(peer_auto: bool, client_auto: bool) -> tuple[LeafKind, ...]:
    kinds: tuple[LeafKind, ...] = (LeafKind.PEER,) if peer_auto else ()
    if client_auto:
        kinds += (LeafKind.SERVER, LeafKind.CLIENT, LeafKind.OPERATOR)
    return kinds


def leaf_secret_name(cluster: str, kind: LeafKind) -> str:
    return {
        LeafKind.PEER: peer_tls_secret_name,
        LeafKind.SERVER: server_tls_secret_name,
        LeafKind.CLIENT: client_tls_secret_name,
        LeafKind.OPERATOR: operator_tls_secret_name,
    }[kind](cluster)


def _service_names(service: str, namespace: str, domain: str) -> list[str]:
    return [
        f"{service}.{namespace}.svc.{domain}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}",
        service,
    ]


def member_dns_names(cluster: str, namespace: str, domain: str) -> list[str]:
    """Every name of every member the cluster may have (all ordinals, so a member added later
    needs no new certificate; explicit names, since etcd checks a peer's client certificate
    by resolving them), plus wildcards of the peer service."""
    peers = peer_service_name(cluster)
    names = [
        name
        for member in member_names(cluster)
        for name in _service_names(f"{member}.{peers}", namespace, domain)
    ]
    return names + [f"*.{name}" for name in _service_names(peers, namespace, domain)]


def leaf_profile(kind: LeafKind, cluster: str, namespace: str, domain: str) -> LeafProfile:
    """What the leaf of `kind` must say."""
    members = tuple(member_dns_names(cluster, namespace, domain))
    match kind:
        case LeafKind.PEER:
            return LeafProfile(cluster, members, server=True, client=True)
        case LeafKind.SERVER:
            service = client_service_name(cluster)
            names = (*members, *_service_names(service, namespace, domain), "localhost")
            # clientAuth too: etcd's gRPC gateway dials the member with this certificate.
            return LeafProfile(cluster, names, ("127.0.0.1",), server=True, client=True)
        case LeafKind.CLIENT:
            return LeafProfile(cluster, client=True)
        case LeafKind.OPERATOR:
            return LeafProfile(OPERATOR_COMMON_NAME, client=True)


def inspect_ca(data: Mapping[str, bytes] | None, now: datetime) -> tuple[CAState, str | None]:
    """The CA Secret's state and, when invalid, what is wrong with it."""
    if data is None:
        return CAState.MISSING, None
    try:
        material = read_material(data, now)
    except InvalidMaterial as e:
        return CAState.INVALID, str(e)
    if not is_ca(material.cert):
        return CAState.INVALID, "tls.crt is not a CA certificate"
    if not signed_by(material.cert, material.ca):
        return CAState.INVALID, "ca.crt does not hold the CA certificate of tls.crt"
    return CAState.VALID, None


def inspect_leaf(
    data: Mapping[str, bytes] | None, ca_bundle: bytes | None, signer: bytes | None = None
) -> LeafSeen | None:
    """A leaf Secret as the decision sees it (None: no such Secret); `signer`: the CA that
    signs now (default: any of the bundle)."""
    if data is None:
        return None
    try:
        material = read_material(data)
    except InvalidMaterial:
        return LeafSeen(cert=None)
    current = ca_bundle is not None and data.get(CA_CERT) == ca_bundle
    return LeafSeen(
        cert=facts(material.cert),
        signed_by_ca=ca_bundle is not None and signed_by(material.cert, ca_bundle),
        bundle_current=current,
        by_signer=signer is None or signed_by(material.cert, signer),
    )


def _why(
    seen: LeafSeen | None,
    profile: LeafProfile,
    now: datetime,
    duration: timedelta,
    renew_before: timedelta,
    *,
    reissue_old: bool,
) -> Why | None:
    if seen is None:
        return Why.MISSING
    cert = seen.cert
    if cert is None:
        return Why.INVALID
    if not seen.signed_by_ca:
        return Why.CA_CHANGED
    if not seen.by_signer:
        if reissue_old:
            return Why.CA_ROTATED
        # A rotation holds it until every member trusts the new CA; its bundle may change.
        return None if seen.bundle_current else Why.BUNDLE_CHANGED
    if not cert.matches(profile):
        return Why.NAMES_CHANGED
    if cert.not_after - cert.not_before > duration + BACKDATE + _LIFETIME_SLACK:
        return Why.DURATION_CHANGED
    if now >= renewal_time(cert, renew_before):
        return Why.EXPIRING
    if not seen.bundle_current:
        return Why.BUNDLE_CHANGED
    return None


def renewal_time(cert: CertFacts, renew_before: timedelta) -> datetime:
    return cert.not_after - renew_before


def earliest(times: Iterable[datetime | None]) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def plan(
    ca: CAState,
    leaves: Mapping[LeafKind, LeafSeen | None],
    profiles: Mapping[LeafKind, LeafProfile],
    *,
    now: datetime,
    duration: timedelta,
    renew_before: timedelta,
    ca_problem: str | None = None,
    ca_secret: str = "the CA Secret",
    reissue_old: bool = True,
) -> Plan:
    """What to issue for the leaves in `profiles` (the wanted ones), given what exists.
    `reissue_old`: leaves signed by a CA of the bundle other than the signing one may be
    re-issued (a rotation says when: only once every member trusts the signing CA)."""
    if ca is CAState.INVALID:
        return Plan(problem=f"{ca_secret}: {ca_problem or 'invalid'}")
    if ca is CAState.MISSING:
        existing = sorted(kind.value for kind in profiles if leaves.get(kind) is not None)
        if existing:
            # A new CA would not be trusted by members that still trust the lost one.
            return Plan(
                problem=f"{ca_secret} is missing while certificates it signed exist "
                f"({', '.join(existing)}): restore it, or delete those Secrets to start over"
            )
        return Plan(create_ca=True, issue=tuple(Issue(k, Why.MISSING) for k in profiles))
    issue: list[Issue] = []
    kept: list[datetime] = []
    for kind, profile in profiles.items():
        seen = leaves.get(kind)
        why = _why(seen, profile, now, duration, renew_before, reissue_old=reissue_old)
        if why is not None:
            issue.append(Issue(kind, why))
        if why in (None, Why.BUNDLE_CHANGED) and seen is not None and seen.cert is not None:
            kept.append(renewal_time(seen.cert, renew_before))
    return Plan(issue=tuple(issue), renew_at=earliest(kept))
