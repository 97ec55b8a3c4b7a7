"""The EtcdRestore shell's part for drills and the final check: what the restored cluster
serves (revision, and keys at the expected revision), what status and the backup say of a
drill, and the drill metrics (from status alone)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lightkube import AsyncClient

from etcd_operator import metrics
from etcd_operator.api import EtcdCluster
from etcd_operator.api.backup import EtcdBackup
from etcd_operator.api.restore import DrillResult, EtcdRestore, EtcdRestoreStatus
from etcd_operator.etcd import EtcdClient, EtcdError, FutureRevision, RevisionCompacted
from etcd_operator.handlers.access import etcd_access
from etcd_operator.handlers.auth import read_root
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.naming import client_url, member_name
from etcd_operator.restore.decide import DrillExpected, DrillSeen

log = logging.getLogger(__name__)


def drill_metrics(restore: EtcdRestore, status: EtcdRestoreStatus) -> None:
    """The drill's recorded result as metrics: derived from status alone, so an operator that
    restarts exports them again from the first round of each restore."""
    drill = status.drill
    if not restore.spec.drill or drill is None or drill.result is None:
        return
    if drill.source_cluster is None or drill.completion_time is None:
        return  # a location source names no cluster to report under
    metrics.record_drill(
        restore.namespace,
        drill.source_cluster,
        passed=drill.result is DrillResult.PASSED,
        at=drill.completion_time.timestamp(),
    )


def drill_seen(restore: EtcdRestore, backup: EtcdBackup | None, served: Served | None) -> DrillSeen:
    """A drill from its status (result, expectations), the backup's record (what it promises,
    read until the snapshot is recorded) and what the throwaway cluster served this round."""
    drill = restore.status.drill
    recorded = None
    expected = None
    if drill is not None:
        if drill.result is not None:
            recorded = (drill.result, drill.reason or drill.result.value, drill.message or "")
        if drill.expected_revision is not None:
            expected = DrillExpected(
                drill.expected_revision, drill.expected_keys, drill.source_cluster
            )
    promised = None
    backup_status = backup.status if backup is not None else None
    if backup is not None and backup_status is not None and backup_status.revision is not None:
        promised = DrillExpected(
            backup_status.revision, backup_status.keys, backup.spec.cluster_name
        )
    return DrillSeen(
        recorded=recorded,
        expected=expected,
        promised=promised,
        served_keys=served.keys if served else None,
        keys_error=served.keys_error if served else None,
        source_cluster=backup.spec.cluster_name if backup is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Served:
    revision: int
    keys: int | None = None  # at the revision asked for (drills)
    keys_error: str | None = None  # etcd refused to count at it (compacted, future)


async def serving(
    kube: AsyncClient, cluster: EtcdCluster, domain: str, count_at: int | None = None
) -> Served | None:
    """The revision the cluster serves (and, for a drill, its keys at `count_at`), asked
    through the operator's usual access (TLS and root's credentials as the cluster's loop uses
    them); None when it cannot be asked."""
    access = await etcd_access(SecretReader(kube, cluster.namespace), cluster)
    if not access.usable:
        return None
    credentials = None
    if cluster.spec.auth.enabled:
        credentials = (await read_root(kube, cluster)).credentials
    endpoints = [
        client_url(
            member_name(cluster.name, i),
            cluster.name,
            cluster.namespace,
            domain,
            tls=access.member_tls,
        )
        for i in range(cluster.spec.replicas)
    ]
    try:
        async with EtcdClient(access.config(endpoints, credentials)) as client:
            revision = await client.revision()
            if count_at is None:
                return Served(revision)
            try:
                return Served(revision, keys=await client.key_count(count_at))
            except (RevisionCompacted, FutureRevision) as e:
                return Served(revision, keys_error=str(e))
    except EtcdError as e:
        log.info("restore: %s/%s does not answer yet: %s", cluster.namespace, cluster.name, e)
        return None
