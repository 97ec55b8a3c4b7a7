"""Kubernetes access shared by the handlers: the EtcdCluster resource type and the client."""

from __future__ import annotations

from lightkube import AsyncClient
from lightkube.generic_resource import create_namespaced_resource

from etcd_operator.api import GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "etcd-operator"

EtcdClusterResource = create_namespaced_resource(GROUP, VERSION, KIND, PLURAL)


def new_client() -> AsyncClient:
    """A client from the in-cluster config or $KUBECONFIG, as kopf itself logs in."""
    return AsyncClient(field_manager=FIELD_MANAGER)


EtcdBackupResource = create_namespaced_resource(GROUP, VERSION, "EtcdBackup", "etcdbackups")
EtcdBackupScheduleResource = create_namespaced_resource(
    GROUP, VERSION, "EtcdBackupSchedule", "etcdbackupschedules"
)
EtcdRestoreResource = create_namespaced_resource(GROUP, VERSION, "EtcdRestore", "etcdrestores")
