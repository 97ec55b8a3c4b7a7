"""`spec.maintenance`: routine care of a running cluster (defragmentation, corruption checks).

NOSPACE recovery needs no spec: a cluster that hits its quota is compacted, defragmented and
disarmed by the operator whatever this says.
"""

from __future__ import annotations

from typing import Self

from croniter import croniter
from pydantic import ConfigDict, Field, field_validator, model_validator

from etcd_operator.api.common import ApiModel, Quantity, cel, validations
from etcd_operator.api.quantity import parse_quantity

_CRON_PATTERN = r"^\S+( +\S+){4}$"


class DefragSpec(ApiModel):
    """When members are defragmented: one at a time, followers first and the leader last,
    only while every member is healthy and nothing else is changing."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.schedule) || has(self.fragmentationThreshold)",
                "maintenance.defrag needs a schedule, a fragmentationThreshold or both",
            )
        )
    )

    schedule: str | None = Field(
        default=None,
        min_length=9,
        max_length=128,
        pattern=_CRON_PATTERN,
        description=(
            "Cron schedule (5 fields, UTC), e.g. '0 3 * * 0'. At each time every member whose "
            "backend reaches minDBSize is defragmented in turn. A cluster never defragmented "
            "on schedule runs at the first time after its creation."
        ),
    )
    fragmentation_threshold: float | None = Field(
        default=None,
        ge=0.01,
        le=0.99,
        description=(
            "Defragment a member once this fraction of its backend is free (dbSize - "
            "dbSizeInUse over dbSize), e.g. 0.5. Free pages appear after compaction."
        ),
    )
    min_db_size: Quantity = Field(
        default="64Mi",
        alias="minDBSize",
        description="Members whose backend is smaller are left alone (small clusters cost "
        "nothing).",
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.schedule is None and self.fragmentation_threshold is None:
            raise ValueError(
                "maintenance.defrag needs a schedule, a fragmentationThreshold or both"
            )
        if self.schedule is not None and (
            len(self.schedule.split()) != 5 or not croniter.is_valid(self.schedule)
        ):
            raise ValueError(
                f"maintenance.defrag.schedule {self.schedule!r} is not a cron schedule"
            )
        if parse_quantity(self.min_db_size) < 0:
            raise ValueError("maintenance.defrag.minDBSize must not be negative")
        return self

    @property
    def min_db_bytes(self) -> int:
        return int(parse_quantity(self.min_db_size))


class CorruptionCheck(ApiModel):
    """Compare the members' keyspaces with etcd's HashKV at a common revision."""

    schedule: str | None = Field(
        default=None,
        min_length=9,
        max_length=128,
        pattern=_CRON_PATTERN,
        description=(
            "When to check, as a cron expression in UTC (e.g. `0 3 * * *`). Unset: never. A"
            " member whose hash differs from that of a majority of the voters is reported"
            " (condition, Warning Event, metric) and replaced by a fresh member copying the"
            " majority's data; without a majority nothing is replaced."
        ),
    )

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"corruptionCheck.schedule {value!r} is not a cron expression")
        return value


class MaintenanceSpec(ApiModel):
    """Routine maintenance of a running cluster."""

    defrag: DefragSpec | None = Field(
        default=None,
        description="Defragmentation on a schedule and/or past a fragmentation threshold; "
        "unset: only NOSPACE recovery defragments.",
    )
    corruption_check: CorruptionCheck = Field(
        default_factory=CorruptionCheck,
        description="Detect members whose data diverged, and replace them.",
        json_schema_extra={"default": {}},
    )
