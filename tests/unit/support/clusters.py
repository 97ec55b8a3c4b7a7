"""Builds typed EtcdCluster objects for the api/resources unit tests."""

from __future__ import annotations

from typing import Any

from etcd_operator.api import EtcdCluster, parse_cluster


def make_cluster(
    name: str = "demo", namespace: str = "ns", uid: str = "uid-1", **spec: Any
) -> EtcdCluster:
    return parse_cluster(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "generation": 1},
            "spec": spec,
        }
    )
