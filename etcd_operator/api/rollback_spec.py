"""`EtcdCluster.spec.rollback`: roll the running cluster back, in place, to an EtcdBackup.

Every member is stopped, its claim retired (kept, never used again) and the cluster is
bootstrapped afresh from the backup's verified snapshot under the same name and Services.
Destructive by design, so the request must be confirmed by naming both the cluster and the
backup: a manifest copied to another cluster, or edited to another backup, does nothing."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from etcd_operator.api.common import OBJECT_NAME_PATTERN, ApiModel, cel, validations


def confirmation(cluster: str, backup: str) -> str:
    """The `confirm` value that authorises rolling `cluster` back to `backup`."""
    return f"{cluster}/{backup}"


class RollbackSpec(ApiModel):
    """A confirmed request to roll this cluster back to one EtcdBackup."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.confirm.endsWith('/' + self.backup)",
                "rollback.confirm must be '<cluster name>/<backup name>'",
            ),
        )
    )

    backup: str = Field(
        min_length=1,
        max_length=253,
        pattern=OBJECT_NAME_PATTERN,
        description="A Succeeded EtcdBackup of this cluster, in the cluster's namespace.",
    )
    confirm: str = Field(
        min_length=3,
        max_length=507,
        description=(
            "Must be exactly `<cluster name>/<backup name>`: the rollback replaces all data"
            " written since the backup (the members' old volumes are kept, retired)."
        ),
    )
    allow_other_cluster: bool = Field(
        default=False,
        description=(
            "Accept a backup taken of another EtcdCluster (its spec.clusterName differs)."
        ),
    )
