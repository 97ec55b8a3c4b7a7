"""`EtcdCluster.spec.recovery`: what the operator may do when a majority of members is gone
for good (their data lost, not just restarting)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from etcd_operator.api.common import ApiModel


class QuorumLossRecovery(StrEnum):
    MANUAL = "Manual"
    FROM_SURVIVOR = "FromSurvivor"
    FROM_LATEST_BACKUP = "FromLatestBackup"


class RecoverySpec(ApiModel):
    """Opt-in recovery from a permanent loss of quorum."""

    quorum_loss: QuorumLossRecovery = Field(
        default=QuorumLossRecovery.MANUAL,
        description=(
            "Manual: report with exact instructions and change nothing. FromSurvivor: rebuild"
            " from the most up-to-date surviving member (--force-new-cluster), then add the"
            " others back as new members. FromLatestBackup: recreate the cluster from the newest"
            " Succeeded EtcdBackup of this cluster, reporting how much history is lost."
        ),
    )
