"""A new EtcdRestore as its decision first sees it: nothing verified, recorded or created;
tests change what their story needs with `dataclasses.replace`."""

from __future__ import annotations

from etcd_operator.api.restore import RestorePhase
from etcd_operator.restore.decide import RestoreObserved

NEW_RESTORE = RestoreObserved(
    uid="u-1", cluster_name="restored", source="claim b path s.db", phase=RestorePhase.PENDING,
    verified=None, cluster_recorded=False, source_exists=True, pod=None, cluster=None,
)  # fmt: skip
