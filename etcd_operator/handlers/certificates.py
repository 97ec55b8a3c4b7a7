"""The cluster's certificates, once per round: user Secrets (mode Secret) checked, and in
mode Auto the CA and leaf Secrets issued or renewed as `tls.renewal.plan` says.

Writes go CA first, then each leaf, so a kill between any two writes leaves a state the next
round finishes. A Secret of one of the operator's names that this cluster does not own is
never overwritten. Messages name Secrets, never their content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lightkube import AsyncClient
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.naming import ca_secret_name
from etcd_operator.resources.secret import decode_data, encode_data, tls_secret
from etcd_operator.tls.material import CA_CERT, Material, read_material
from etcd_operator.tls.pki import InvalidMaterial, facts, issue, new_ca
from etcd_operator.tls.renewal import (
    earliest,
    inspect_ca,
    inspect_leaf,
    leaf_profile,
    leaf_secret_name,
    plan,
    renewal_time,
    wanted_leaves,
)

rbac.needs(Secret, "create", why="TLS Auto: the cluster's CA and certificates")
rbac.needs(Secret, "patch", why="TLS Auto: renewed certificates, updated in place")


@dataclass(frozen=True)
class CertificatesRound:
    """What the round did about certificates."""

    # Something wrong that only a human can fix: nothing else is changed while it holds.
    problem: str | None = None
    # Secrets written, each with why (for an Event).
    written: tuple[str, ...] = ()
    # When a certificate is next due for renewal (a round must run by then).
    renew_at: datetime | None = None


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


async def ensure_certificates(
    kube: AsyncClient, secrets: SecretReader, cluster: EtcdCluster, *, domain: str, now: datetime
) -> CertificatesRound:
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
    profiles = {kind: leaf_profile(kind, name, ns, domain) for kind in kinds}
    decided = plan(
        ca_state,
        {k: inspect_leaf(decode_data(s) if s else None, ca_bundle) for k, s in leaves.items()},
        profiles,
        now=now,
        duration=tls.duration,
        renew_before=tls.renewal_margin,
        ca_problem=ca_problem,
        ca_secret=f"Secret {ca_name}",
    )
    if decided.problem is not None:
        return CertificatesRound(problem=decided.problem)
    written: list[str] = []
    if decided.create_ca:
        pair = new_ca(f"{name}.{ns} etcd CA", now)
        ca = Material(pair.cert, pair.key, pair.cert)
        await _create(kube, secrets, tls_secret(cluster, ca_name, ca.data()))
        written.append(f"{ca_name} (new CA)")
    else:
        assert ca_data is not None  # VALID
        ca = read_material(ca_data)
    renewals = [decided.renew_at]
    for job in decided.issue:
        secret_name = leaf_secret_name(name, job.kind)
        pair = issue(ca.pair, profiles[job.kind], now, tls.duration)
        data = Material(pair.cert, pair.key, ca.ca).data()
        if leaves.get(job.kind) is None:
            await _create(kube, secrets, tls_secret(cluster, secret_name, data))
        else:
            await _patch(kube, secrets, cluster, secret_name, data)
        written.append(f"{secret_name} ({job.why.value})")
        renewals.append(renewal_time(facts(pair.cert), tls.renewal_margin))
    return CertificatesRound(written=tuple(written), renew_at=earliest(renewals))


async def _create(kube: AsyncClient, secrets: SecretReader, secret: Secret) -> None:
    # A conflict means someone made it since we read: the next round reads it again.
    await kube.create(secret)
    secrets.wrote(secret)


async def _patch(
    kube: AsyncClient,
    secrets: SecretReader,
    cluster: EtcdCluster,
    name: str,
    data: dict[str, bytes],
) -> None:
    patched = await kube.patch(
        Secret,
        name,
        {"data": encode_data(data)},
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
