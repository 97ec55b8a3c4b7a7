"""CustomResourceDefinitions generated from the API models.

Each kind of the group is one `Kind` entry in `KINDS`; EtcdBackup,
EtcdBackupSchedule and EtcdRestore will be added there with their own models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from etcd_operator.api import backup, backup_schedule, cluster, restore
from etcd_operator.api.backup_spec import EtcdBackupSpec
from etcd_operator.api.cluster_spec import EtcdClusterSpec
from etcd_operator.api.cluster_status import EtcdClusterStatus
from etcd_operator.api.common import GROUP, VERSION, CelRule, cel
from etcd_operator.api.schema import Schema, model_schema, ordered
from etcd_operator.api.structural import structural_errors

CATEGORIES = ("etcd-operator",)


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def to_k8s(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class Kind:
    """One kind of the API group and what its CRD needs."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    printer_columns: tuple[PrinterColumn, ...] = ()
    # Rules on the whole object, e.g. on metadata.name, which CEL may read at the root.
    root_rules: tuple[CelRule, ...] = field(default=())

    # `kubectl scale`: the spec and status paths of the replica counts, and of the selector.
    scale: tuple[str, str, str] | None = None

    def scale_subresource(self) -> dict[str, dict[str, str]]:
        if self.scale is None:
            return {}
        spec, status, selector = self.scale
        return {
            "scale": {
                "specReplicasPath": spec,
                "statusReplicasPath": status,
                "labelSelectorPath": selector,
            }
        }

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


ETCD_CLUSTER = Kind(
    kind=cluster.KIND,
    plural=cluster.PLURAL,
    singular=cluster.SINGULAR,
    short_names=cluster.SHORT_NAMES,
    description=(
        "EtcdCluster is an etcd cluster run by etcd-operator: one pod and one volume "
        "per member, bootstrapped, scaled, healed and upgraded one safe step at a time."
    ),
    spec=EtcdClusterSpec,
    status=EtcdClusterStatus,
    printer_columns=(
        PrinterColumn("Replicas", "integer", ".spec.replicas", "Desired members."),
        PrinterColumn("Ready", "integer", ".status.readyReplicas", "Members whose pods are ready."),
        PrinterColumn("Version", "string", ".status.currentVersion", "etcd version running."),
        PrinterColumn("Phase", "string", ".status.phase", "One-word summary of the cluster."),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
        PrinterColumn("Leader", "string", ".status.leader", "The leader member.", priority=1),
    ),
    scale=(".spec.replicas", ".status.replicas", ".status.selector"),
    root_rules=(
        cel(
            f"size(self.metadata.name) <= {cluster.MAX_CLUSTER_NAME_LENGTH}",
            f"metadata.name must be at most {cluster.MAX_CLUSTER_NAME_LENGTH} characters: "
            "pod, service and volume names are built from it",
        ),
        cel(
            f"self.metadata.name.matches('{cluster.CLUSTER_NAME_PATTERN}')",
            "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', "
            "starting with a letter): it names the cluster's services",
        ),
    ),
)

ETCD_RESTORE = Kind(
    kind=restore.KIND,
    plural=restore.PLURAL,
    singular=restore.SINGULAR,
    short_names=restore.SHORT_NAMES,
    description=(
        "EtcdRestore creates a new EtcdCluster whose initial members start from a snapshot, "
        "after checking the snapshot (sha256 and etcd's own integrity check)."
    ),
    spec=restore.EtcdRestoreSpec,
    status=restore.EtcdRestoreStatus,
    printer_columns=(
        PrinterColumn("Cluster", "string", ".spec.cluster.name", "The EtcdCluster created."),
        PrinterColumn("Phase", "string", ".status.phase", "Where the restore is."),
        PrinterColumn("Revision", "integer", ".status.revision", "The snapshot's revision."),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
)

ETCD_BACKUP = Kind(
    kind=backup.KIND,
    plural=backup.PLURAL,
    singular=backup.SINGULAR,
    short_names=backup.SHORT_NAMES,
    description=(
        "EtcdBackup is a one-shot snapshot of an EtcdCluster, streamed by a Job to S3-compatible "
        "storage or a PVC and verified by sha256; status says where it is and what it holds."
    ),
    spec=EtcdBackupSpec,
    status=backup.EtcdBackupStatus,
    printer_columns=(
        PrinterColumn("Cluster", "string", ".spec.clusterName", "The EtcdCluster backed up."),
        PrinterColumn("Phase", "string", ".status.phase", "Pending, Running, Succeeded, Failed."),
        PrinterColumn("Revision", "integer", ".status.revision", "etcd revision of the snapshot."),
        PrinterColumn("Size", "integer", ".status.size", "Bytes stored."),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
        PrinterColumn("Location", "string", ".status.location", "Where it is.", priority=1),
    ),
    root_rules=(
        cel(
            f"size(self.metadata.name) <= {backup.MAX_BACKUP_NAME_LENGTH}",
            f"metadata.name must be at most {backup.MAX_BACKUP_NAME_LENGTH} characters: "
            "the backup Job's name is built from it",
        ),
    ),
)

ETCD_BACKUP_SCHEDULE = Kind(
    kind=backup_schedule.KIND,
    plural=backup_schedule.PLURAL,
    singular=backup_schedule.SINGULAR,
    short_names=backup_schedule.SHORT_NAMES,
    description=(
        "EtcdBackupSchedule creates EtcdBackups of a cluster on a cron schedule, at most one "
        "at a time, and prunes old ones (the resources and their stored snapshots)."
    ),
    spec=backup_schedule.EtcdBackupScheduleSpec,
    status=backup_schedule.EtcdBackupScheduleStatus,
    printer_columns=(
        PrinterColumn("Cluster", "string", ".spec.clusterName", "The EtcdCluster backed up."),
        PrinterColumn("Schedule", "string", ".spec.schedule", "Cron expression."),
        PrinterColumn("Suspend", "boolean", ".spec.suspend", "No new backups while true."),
        PrinterColumn("Active", "string", ".status.active", "The backup running now."),
        PrinterColumn(
            "Last Success", "date", ".status.lastSuccessfulTime", "Newest Succeeded backup."
        ),
        PrinterColumn("Next", "date", ".status.nextScheduleTime", "When the next one is due."),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
    root_rules=(
        cel(
            f"size(self.metadata.name) <= {backup_schedule.MAX_SCHEDULE_NAME_LENGTH}",
            f"metadata.name must be at most {backup_schedule.MAX_SCHEDULE_NAME_LENGTH} "
            "characters: its backups are named after it",
        ),
    ),
)

KINDS: tuple[Kind, ...] = (ETCD_CLUSTER, ETCD_BACKUP, ETCD_RESTORE, ETCD_BACKUP_SCHEDULE)


def openapi_schema(kind: Kind) -> Schema:
    """The structural `openAPIV3Schema` of one kind."""
    # An object with only defaulted fields may be omitted; the server defaults it.
    spec = model_schema(kind.spec)
    if not spec.get("required"):
        spec = ordered({**spec, "default": {}})
    schema: Schema = {
        "description": kind.description,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "Versioned schema of this representation of the object.",
                "type": "string",
            },
            "kind": {
                "description": "The REST resource this object represents.",
                "type": "string",
            },
            "metadata": {"type": "object"},
            "spec": spec,
            "status": model_schema(kind.status),
        },
    }
    if spec.get("required"):
        schema["required"] = ["spec"]
    if kind.root_rules:
        schema["x-kubernetes-validations"] = list(kind.root_rules)
    return schema


def crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as a plain dict ready for YAML."""
    schema = openapi_schema(kind)
    errors = structural_errors(schema)
    if errors:
        raise ValueError(f"{kind.kind} schema is not structural:\n" + "\n".join(errors))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/name": "etcd-operator"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": list(CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, **kind.scale_subresource()},
                    "additionalPrinterColumns": [
                        column.to_k8s() for column in kind.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def crd_file_name(kind: Kind) -> str:
    """`etcd.operator.io_etcdclusters.yaml`, the controller-gen naming convention."""
    return f"{GROUP}_{kind.plural}.yaml"
