"""The Secret holding etcd's root password when the operator generates it (`<cluster>-root`)."""

from __future__ import annotations

import base64
import secrets

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from etcd_operator.api import EtcdCluster
from etcd_operator.resources.labels import cluster_labels, owner_reference

ROOT_USER = "root"
PASSWORD_KEY = "password"
AUTH_COMPONENT = "auth"
# 32 random bytes, urlsafe base64: 43 characters, no shell or YAML quoting needed.
PASSWORD_BYTES = 32


def root_secret_name(cluster: EtcdCluster) -> str:
    """`spec.auth.rootSecretName`, or the generated `<cluster>-root`."""
    return cluster.spec.auth.root_secret_name or f"{cluster.name}-root"


def new_root_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def root_secret(cluster: EtcdCluster, password: str) -> Secret:
    """The generated root Secret, owned by the cluster (deleted with it)."""
    return Secret(
        metadata=ObjectMeta(
            name=f"{cluster.name}-root",
            namespace=cluster.namespace,
            labels=cluster_labels(cluster, AUTH_COMPONENT),
            ownerReferences=[owner_reference(cluster)],
        ),
        type="Opaque",
        data={PASSWORD_KEY: base64.b64encode(password.encode()).decode()},
    )
