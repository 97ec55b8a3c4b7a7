"""The cluster's certificates, once per round: user Secrets (mode Secret) checked, and in
mode Auto the CA and leaf Secrets issued or renewed as `tls.renewal.plan` says.

Writes go CA first, then each leaf, so a kill between any two writes leaves a state the next
round finishes. A Secret of one of the operator's names that this cluster does not own is
never overwritten. Messages name Secrets, never their content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Pod, Secret
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.handlers.access import EtcdAccess
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.handlers.served import all_served
from etcd_operator.naming import ca_secret_name, client_url
from etcd_operator.resources.labels import ROTATE_CA_ANNOTATION, ROTATE_CA_HANDLED_ANNOTATION
from etcd_operator.resources.pod import peer_secret, server_secret, trust_outdated
from etcd_operator.resources.secret import decode_data, encode_data, tls_secret
from etcd_operator.tls.material import CA_CERT, TLS_CERT, Material, read_material
from etcd_operator.tls.pki import (
    InvalidMaterial,
    bundle,
    facts,
    issue,
    load_bundle,
    load_certificate,
    new_ca,
    pem_from_der,
    signed_by,
)
from etcd_operator.tls.renewal import (
    CAState,
    LeafKind,
    LeafSeen,
    Plan,
    Why,
    earliest,
    inspect_ca,
    inspect_leaf,
    leaf_profile,
    leaf_secret_name,
    plan,
    renewal_time,
    wanted_leaves,
)
from etcd_operator.tls.rotation import (
    LeafState,
    Phase,
    RotationDecision,
    RotationSeen,
    Trigger,
    Trust,
    trust_of,
)
from etcd_operator.tls.rotation import decide as decide_rotation

rbac.needs(Secret, "create", why="TLS Auto: the cluster's CA and certificates")
rbac.needs(Secret, "patch", why="TLS Auto: renewed certificates, updated in place")

# While members may still serve old certificates: how soon to look again.
SERVED_RECHECK = timedelta(seconds=5)


@dataclass(frozen=True)
class CertificatesRound:
    """What the round did about certificates."""

    # Something wrong that only a human can fix: nothing else is changed while it holds.
    problem: str | None = None
    # Secrets written, each with why (for an Event).
    written: tuple[str, ...] = ()
    # When a certificate is next due for renewal (a round must run by then).
    renew_at: datetime | None = None
    # Where the CA rotation stands (None: no valid Auto CA), the rotation request the CA Secret
    # records as handled and when the signing CA expires.
    rotation: RotationDecision | None = None
    handled_request: str | None = None
    ca_not_after: datetime | None = None


def user_secrets(cluster: EtcdCluster) -> list[tuple[str, str]]:
    """(spec field, Secret name) of every Secret the user brings (mode Secret)."""
    tls = cluster.spec.tls
    named = [
        ("tls.peer.secretName", tls.peer.secret_name),
        ("tls.client.secretName", tls.client.secret_name),
        ("tls.client.operatorSecretName", tls.client.operator_secret_name),
    ]
    return [(field, name) for field, name in named if name is not None]


async def check_user_secrets(
    secrets: SecretReader, cluster: EtcdCluster, now: datetime
) -> str | None:
    problems = []
    for field, name in user_secrets(cluster):
        secret = await secrets.get(name)
        if secret is None:
            problems.append(f"Secret {name} ({field}) does not exist")
            continue
        try:
            read_material(decode_data(secret), now)
        except InvalidMaterial as e:
            problems.append(f"Secret {name} ({field}): {e}")
    return "; ".join(problems) or None


def _owned(secret: Secret, cluster: EtcdCluster) -> bool:
    owners = (secret.metadata.ownerReferences if secret.metadata else None) or []
    return any(o.uid == cluster.metadata.uid for o in owners)


async def member_trust(secrets: SecretReader, cluster: EtcdCluster) -> Trust | None:
    """What the ca.crt of the Secrets member pods mount hold now (None: no TLS, or none
    readable yet)."""
    bundles = []
    for name in (peer_secret(cluster), server_secret(cluster)):
        secret = await secrets.get(name) if name is not None else None
        ca = decode_data(secret).get(CA_CERT) if secret is not None else None
        if ca:
            bundles.append(ca)
    if not bundles:
        return None
    try:
        return trust_of(bundles)
    except InvalidMaterial:
        return None  # reported as TLSSecretInvalid by the checks


async def ensure_certificates(
    kube: AsyncClient,
    secrets: SecretReader,
    cluster: EtcdCluster,
    *,
    domain: str,
    now: datetime,
    pods: Mapping[str, Pod] | None = None,
    access: EtcdAccess | None = None,
) -> CertificatesRound:
    """`pods`: the member pods (whether they trust the current bundle); `access`: how the
    operator reaches members (to see which certificate they serve during a rotation)."""
    problem = await check_user_secrets(secrets, cluster, now)
    tls = cluster.spec.tls
    if problem is not None or not tls.auto:
        return CertificatesRound(problem=problem)
    name, ns = cluster.name, cluster.namespace
    kinds = wanted_leaves(tls.peer.mode == "Auto", tls.client.mode == "Auto")
    ca_name = ca_secret_name(name)
    ca_secret = await secrets.get(ca_name)
    if ca_secret is not None and not _owned(ca_secret, cluster):
        return CertificatesRound(problem=f"Secret {ca_name} exists and is not this cluster's")
    ca_data = decode_data(ca_secret) if ca_secret is not None else None
    ca_state, ca_problem = inspect_ca(ca_data, now)
    leaves = {}
    for kind in kinds:
        secret = await secrets.get(leaf_secret_name(name, kind))
        if secret is not None and not _owned(secret, cluster):
            return CertificatesRound(
                problem=f"Secret {leaf_secret_name(name, kind)} exists and is not this cluster's"
            )
        leaves[kind] = secret
    ca_bundle = ca_data.get(CA_CERT) if ca_data else None
    signer = ca_data.get(TLS_CERT) if ca_data and ca_state is CAState.VALID else None
    seen = {
        k: inspect_leaf(decode_data(s) if s else None, ca_bundle, signer) for k, s in leaves.items()
    }
    profiles = {kind: leaf_profile(kind, name, ns, domain) for kind in kinds}

    def planned(reissue_old: bool) -> Plan:
        return plan(
            ca_state,
            seen,
            profiles,
            now=now,
            duration=tls.duration,
            renew_before=tls.renewal_margin,
            ca_problem=ca_problem,
            ca_secret=f"Secret {ca_name}",
            reissue_old=reissue_old,
        )

    decided = planned(reissue_old=False)
    if decided.problem is not None:
        return CertificatesRound(problem=decided.problem)
    rotation: RotationDecision | None = None
    handled: str | None = None
    ca_not_after: datetime | None = None
    if ca_state is CAState.VALID:
        assert ca_data is not None and ca_secret is not None
        handled = ((ca_secret.metadata.annotations if ca_secret.metadata else None) or {}).get(
            ROTATE_CA_HANDLED_ANNOTATION
        )
        ca_not_after = facts(ca_data[TLS_CERT]).not_after
        rotation = await _rotation(
            secrets,
            cluster,
            ca_secret=ca_secret,
            ca_data=ca_data,
            seen=seen,
            pods=pods or {},
            access=access,
            renewal_pending=bool(decided.issue),
            now=now,
            domain=domain,
        )
        if rotation.start is not None or rotation.retire:
            wrote = await _rotate(
                kube,
                secrets,
                cluster,
                ca_secret=ca_secret,
                ca_data=ca_data,
                rotation=rotation,
                now=now,
            )
            if rotation.start is Trigger.REQUESTED:
                handled = _requested(cluster)
            return CertificatesRound(
                written=(wrote,),
                renew_at=now,
                rotation=rotation,
                handled_request=handled,
                ca_not_after=ca_not_after,
            )
        if rotation.reissue_old:
            decided = planned(reissue_old=True)
    written: list[str] = []
    if decided.create_ca:
        pair = new_ca(f"{name}.{ns} etcd CA", now)
        ca = Material(pair.cert, pair.key, pair.cert)
        created = tls_secret(cluster, ca_name, ca.data())
        requested = _requested(cluster)
        if requested is not None and created.metadata is not None:
            # A request made before the CA existed is met by this CA.
            created.metadata.annotations = {ROTATE_CA_HANDLED_ANNOTATION: requested}
        await _create(kube, secrets, created)
        written.append(f"{ca_name} (new CA)")
    else:
        assert ca_data is not None  # VALID
        ca = read_material(ca_data)
    renewals = [decided.renew_at, rotation.recheck_at if rotation else None]
    for job in decided.issue:
        secret_name = leaf_secret_name(name, job.kind)
        if job.why is Why.BUNDLE_CHANGED:
            # The certificate stays: only the trust bundle beside it changes.
            await _patch(kube, secrets, cluster, secret_name, {CA_CERT: ca.ca})
            written.append(f"{secret_name} ({job.why.value})")
            continue
        pair = issue(ca.pair, profiles[job.kind], now, tls.duration)
        data = Material(pair.cert, pair.key, ca.ca).data()
        if leaves.get(job.kind) is None:
            await _create(kube, secrets, tls_secret(cluster, secret_name, data))
        else:
            await _patch(kube, secrets, cluster, secret_name, data)
        written.append(f"{secret_name} ({job.why.value})")
        renewals.append(renewal_time(facts(pair.cert), tls.renewal_margin))
    if rotation is not None and rotation.phase is not Phase.IDLE and written:
        renewals.append(now)  # the rotation's next phase may follow at once
    return CertificatesRound(
        written=tuple(written),
        renew_at=earliest(renewals),
        rotation=rotation,
        handled_request=handled,
        ca_not_after=ca_not_after,
    )


def _requested(cluster: EtcdCluster) -> str | None:
    return (cluster.metadata.annotations or {}).get(ROTATE_CA_ANNOTATION)


async def _rotation(
    secrets: SecretReader,
    cluster: EtcdCluster,
    *,
    ca_secret: Secret,
    ca_data: Mapping[str, bytes],
    seen: Mapping[LeafKind, LeafSeen | None],
    pods: Mapping[str, Pod],
    access: EtcdAccess | None,
    renewal_pending: bool,
    now: datetime,
    domain: str,
) -> RotationDecision:
    """Where the CA rotation stands (see tls.rotation), read from the Secrets and pods."""
    signer = load_certificate(ca_data[TLS_CERT])
    trust = await member_trust(secrets, cluster)
    annotations = (ca_secret.metadata.annotations if ca_secret.metadata else None) or {}
    state = RotationSeen(
        authorities=len(load_bundle(ca_data[CA_CERT])),
        ca_not_before=signer.not_valid_before_utc,
        ca_not_after=signer.not_valid_after_utc,
        leaves=[
            LeafState(
                leaf.signed_by_ca and leaf.by_signer, leaf.bundle_current, leaf.cert.not_before
            )
            for leaf in seen.values()
            if leaf is not None and leaf.cert is not None
        ],
        members_trust=not any(trust_outdated(p, trust) for p in pods.values()),
        served=None,
        requested=_requested(cluster),
        handled=annotations.get(ROTATE_CA_HANDLED_ANNOTATION),
        now=now,
        renewal_pending=renewal_pending,
    )
    decision = decide_rotation(state)
    probe = access.tls if access is not None and cluster.spec.tls.client.mode == "Auto" else None
    if decision.phase in (Phase.PRESENTING, Phase.RETIRING) and probe is not None and pods:
        tls = cluster.spec.tls.member_tls()
        urls = [client_url(p, cluster.name, cluster.namespace, domain, tls=tls) for p in pods]
        served = await all_served(sorted(urls), probe)
        ours = all(d is not None and signed_by(pem_from_der(d), ca_data[TLS_CERT]) for d in served)
        decision = decide_rotation(replace(state, served=ours))
        if decision.phase is Phase.PRESENTING:
            decision = replace(decision, recheck_at=now + SERVED_RECHECK)
    return decision


async def _rotate(
    kube: AsyncClient,
    secrets: SecretReader,
    cluster: EtcdCluster,
    *,
    ca_secret: Secret,
    ca_data: Mapping[str, bytes],
    rotation: RotationDecision,
    now: datetime,
) -> str:
    """One patch of the CA Secret: a new signing CA with old + new in the bundle (and the
    request recorded as handled), or the bundle cut to the signing CA."""
    ca_name = ca_secret_name(cluster.name)
    if rotation.retire:
        data = {CA_CERT: bundle([ca_data[TLS_CERT]])}
        await _patch(kube, secrets, cluster, ca_name, data)
        return f"{ca_name} (old CA dropped from the bundle)"
    stamp = now.strftime("%Y%m%d%H%M%S")
    pair = new_ca(f"{cluster.name}.{cluster.namespace} etcd CA {stamp}", now)
    data = Material(pair.cert, pair.key, bundle([ca_data[CA_CERT], pair.cert])).data()
    requested = _requested(cluster)
    annotations = {ROTATE_CA_HANDLED_ANNOTATION: requested} if requested is not None else None
    await _patch(kube, secrets, cluster, ca_name, data, annotations=annotations)
    why = "requested" if rotation.start is Trigger.REQUESTED else "the old one expires"
    return f"{ca_name} (new CA, {why}; both trusted)"


async def _create(kube: AsyncClient, secrets: SecretReader, secret: Secret) -> None:
    # A conflict means someone made it since we read: the next round reads it again.
    await kube.create(secret)
    secrets.wrote(secret)


async def _patch(
    kube: AsyncClient,
    secrets: SecretReader,
    cluster: EtcdCluster,
    name: str,
    data: Mapping[str, bytes],
    *,
    annotations: dict[str, str] | None = None,
) -> None:
    body: dict[str, Any] = {"data": encode_data(data)}
    if annotations:
        body["metadata"] = {"annotations": annotations}
    patched = await kube.patch(
        Secret,
        name,
        body,
        namespace=cluster.namespace,
        patch_type=PatchType.MERGE,
    )
    if isinstance(patched, Secret):
        secrets.wrote(patched)


def wake_by(renew_at: datetime | None, now: datetime, delay: float) -> float:
    """`delay`, shortened so that the next round runs when a certificate is due."""
    if renew_at is None:
        return delay
    due = max((renew_at - now) / timedelta(seconds=1), 1.0)
    return min(delay, due)
