"""The throwaway EtcdCluster of a restore drill (pure): the restore's cluster object, forced to
one member on an emptyDir, owned by the EtcdRestore and labelled as a drill.

One member: the drill checks the data, not the membership, and one member starts fastest and
costs least. emptyDir: nothing of it is to be kept, it needs no claim to provision or clean
up, and it goes with the pod; its sizeLimit leaves room for the restored database.
"""

from __future__ import annotations

import math
from typing import Any

from etcd_operator.api import GROUP
from etcd_operator.api.quantity import parse_quantity
from etcd_operator.api.restore import EtcdRestore
from etcd_operator.resources.labels import owner_reference

DRILL_LABEL = f"{GROUP}/restore-drill"  # value: the EtcdRestore's name
_MI = 1024 * 1024
# Room over the snapshot: the restored db plus etcd's WAL and snap files.
_HEADROOM = 2
_SLACK = 64 * _MI


def drill_size(requested: str | int, snapshot_size: int | None) -> str:
    """The emptyDir's sizeLimit: what the spec asks, at least twice the snapshot plus 64 MiB."""
    needed = 0 if snapshot_size is None else snapshot_size * _HEADROOM + _SLACK
    if parse_quantity(requested) >= needed:
        return str(requested)
    return f"{math.ceil(needed / _MI)}Mi"


def drill_cluster(restore: EtcdRestore, body: dict[str, Any]) -> dict[str, Any]:
    """`body`, the EtcdCluster the restore would create, made the drill's throwaway one."""
    spec = dict(body["spec"])
    storage = dict(spec.get("storage") or {})
    storage["emptyDir"] = True
    storage["size"] = drill_size(storage.get("size") or "1Gi", restore.status.size)
    spec["storage"] = storage
    spec["replicas"] = 1
    template = dict(spec.get("podTemplate") or {})
    template["labels"] = {**(template.get("labels") or {}), DRILL_LABEL: restore.name}
    spec["podTemplate"] = template
    metadata = dict(body["metadata"])
    metadata["labels"] = {**(metadata.get("labels") or {}), DRILL_LABEL: restore.name}
    metadata["ownerReferences"] = [owner_reference(restore).to_dict()]
    return {**body, "metadata": metadata, "spec": spec}
