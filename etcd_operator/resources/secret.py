"""The TLS Secrets the operator issues in `Auto` mode (cert-manager layout: tls.crt, tls.key,
ca.crt), owned by the cluster so they go with it."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from etcd_operator.api import EtcdCluster
from etcd_operator.resources.labels import cluster_labels, owner_reference

TLS_COMPONENT = "tls"
TLS_SECRET_TYPE = "kubernetes.io/tls"


def encode_data(data: Mapping[str, bytes]) -> dict[str, str]:
    """A Secret's `data`: base64 of each value."""
    return {key: base64.b64encode(value).decode() for key, value in data.items()}


def decode_data(secret: Secret) -> dict[str, bytes]:
    """What a Secret holds, decoded (undecodable values are left out)."""
    decoded: dict[str, bytes] = {}
    for key, value in (secret.data or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except ValueError:
            continue
    return decoded


def tls_secret(cluster: EtcdCluster, name: str, data: Mapping[str, bytes]) -> Secret:
    return Secret(
        metadata=ObjectMeta(
            name=name,
            namespace=cluster.namespace,
            labels=cluster_labels(cluster, TLS_COMPONENT),
            ownerReferences=[owner_reference(cluster)],
        ),
        type=TLS_SECRET_TYPE,
        data=encode_data(data),
    )
