"""The operator's identity on localcluster: the ServiceAccount and RBAC a real install gives
it, and a kubeconfig holding that account's token (not localcluster's admin credentials).

Both come from the Helm chart, the one source of the install. A cluster-wide operator gets
exactly what deploy/etcd-operator.yaml (the chart rendered with its defaults) grants: the
Namespace, the ServiceAccount, the ClusterRole, the leader-election Role and their bindings;
not the Deployment nor the Services (there is no image registry: the operator runs as a host
process) and not the CRDs (installed by `install_crds`). A namespaced one gets what the
chart renders with `watchNamespaces`, as a release of its own (so a ServiceAccount of its
own), so that it never borrows the cluster-wide rights of another operator running at the
same time.

The token comes from the TokenRequest API, as a pod's projected token does: bound to the
account, expiring, never stored in a Secret. kopf reads a kubeconfig's token once (it has
no `tokenFile`), so it lives long enough for a test session or a demo; a detached operator
is restarted with a fresh one before it runs out (see OperatorProcess.start).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, KubeConfig, codecs
from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Namespace, ServiceAccount

from harness import chart
from localcluster.config import StateDir

# What an install grants its operator: its identity and rights, nothing that runs.
IDENTITY_KINDS = (
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
)
# A day: longer than any test session; a detached operator is restarted before it ends.
TOKEN_SECONDS = 24 * 3600
FIELD_MANAGER = "etcd-operator-install"


@dataclass(frozen=True)
class Account:
    namespace: str
    name: str

    @property
    def username(self) -> str:
        """What the API server calls a request made with this account's token."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class Identity:
    account: Account
    kubeconfig: Path
    expires: float  # Unix time the token stops working


def account_for(name: str, namespaces: Sequence[str]) -> Account:
    """The install's account: the plain manifest's cluster-wide, or a release of its own per
    namespaced operator (a release name holding the chart's name is the objects' name)."""
    return Account(chart.NAMESPACE, chart.RELEASE if not namespaces else f"{chart.RELEASE}-{name}")


def _identity(documents: list[dict[str, Any]]) -> list[Any]:
    return [codecs.from_dict(d) for d in documents if d["kind"] in IDENTITY_KINDS]


def cluster_wide_objects() -> list[Any]:
    """What deploy/etcd-operator.yaml grants the operator, in its order."""
    return _identity(chart.documents(chart.PLAIN_MANIFEST.read_text()))


def namespaced_objects(account: Account, namespaces: Sequence[str]) -> list[Any]:
    """What the chart grants `account` as a release watching only `namespaces`."""
    values = {"watchNamespaces": list(namespaces)}
    rendered = chart.render(values, release=account.name, namespace=account.namespace)
    return _identity(chart.documents(rendered))


def install(admin: Client, account: Account, namespaces: Sequence[str]) -> None:
    """Apply the install's RBAC as an admin would (server-side apply, idempotent)."""
    # Roles need their namespaces; a namespaced release does not create its own.
    for namespace in (*namespaces, account.namespace) if namespaces else ():
        _ensure_namespace(admin, namespace)
    objects = namespaced_objects(account, namespaces) if namespaces else cluster_wide_objects()
    for obj in objects:
        admin.apply(obj, force=True)


def request_token(
    admin: Client, account: Account, seconds: int = TOKEN_SECONDS
) -> tuple[str, float]:
    """A fresh token for `account` and when it expires (TokenRequest)."""
    request = ServiceAccount.Token(
        metadata=ObjectMeta(name=account.name, namespace=account.namespace),
        spec=TokenRequestSpec(audiences=[], expirationSeconds=seconds),
    )
    got = admin.create(request, account.name, namespace=account.namespace)
    status = got.status
    if status is None or not status.token or status.expirationTimestamp is None:
        raise RuntimeError(f"TokenRequest for {account.username} answered without a token")
    return status.token, status.expirationTimestamp.timestamp()


def write_kubeconfig(path: Path, admin_kubeconfig: Path, account: Account, token: str) -> Path:
    """A kubeconfig for the same API server (and CA) as the admin one, with `token`."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": account.username, "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": cluster["name"], "user": account.username}}
        ],
        "current-context": "operator",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # The token is a credential: owner-only, written without a readable window.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return path


def wait_granted(kubeconfig: Path, namespaces: Sequence[str], timeout: float = 30.0) -> None:
    """Until the account may watch EtcdClusters where it must (RBAC is served from a cache)."""
    from etcd_operator.api import GROUP, PLURAL

    client = Client(KubeConfig.from_file(kubeconfig))
    deadline = time.monotonic() + timeout
    try:
        where: list[str | None] = [*namespaces] or [None]  # None: every namespace
        for namespace in where:
            review = SelfSubjectAccessReview(
                spec=SelfSubjectAccessReviewSpec(
                    resourceAttributes=ResourceAttributes(
                        group=GROUP, resource=PLURAL, verb="watch", namespace=namespace
                    )
                )
            )
            while not _allowed(client, review):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"RBAC for {kubeconfig} not granted after {timeout}s")
                time.sleep(0.2)
    finally:
        client.close()


def operator_identity(
    state: StateDir, name: str, namespaces: Sequence[str], seconds: int = TOKEN_SECONDS
) -> Identity:
    """Install the operator's RBAC, get its token and write its kubeconfig."""
    account = account_for(name, namespaces)
    admin = Client(KubeConfig.from_file(state.kubeconfig), field_manager=FIELD_MANAGER)
    try:
        install(admin, account, namespaces)
        token, expires = request_token(admin, account, seconds)
    finally:
        admin.close()
    path = write_kubeconfig(
        state.root / "operators" / f"{name}.kubeconfig", state.kubeconfig, account, token
    )
    wait_granted(path, namespaces)
    return Identity(account, path, expires)


def _allowed(client: Client, review: SelfSubjectAccessReview) -> bool:
    status = client.create(review).status
    return bool(status and status.allowed)


def _ensure_namespace(admin: Client, namespace: str) -> None:
    try:
        admin.get(Namespace, namespace)
    except ApiError as e:
        if e.status.code != 404:
            raise
        try:
            admin.create(Namespace(metadata=ObjectMeta(name=namespace)))
        except ApiError as e2:
            if e2.status.code != 409:  # created meanwhile: fine
                raise
