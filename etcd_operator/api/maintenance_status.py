"""`status.maintenance`: the backend quota, etcd's alarms, and the records of NOSPACE recovery
and defragmentation that a restarted operator resumes from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from etcd_operator.api.common import ApiModel

# Read back leniently, like the rest of status: never stuck on another version's status.
_LENIENT = ConfigDict(extra="ignore")
_INT64: dict[str, Any] = {"format": "int64"}


class DefraggedMember(ApiModel):
    """One member defragmented in a run."""

    model_config = _LENIENT

    name: str = Field(max_length=253, description="The member.")
    time: datetime = Field(description="When its defragmentation was done.")
    db_size_before: int = Field(
        ge=0, description="Its backend's size in bytes before.", json_schema_extra=_INT64
    )
    db_size_in_use_before: int = Field(
        ge=0,
        description="Bytes of it holding live data before (about its size after).",
        json_schema_extra=_INT64,
    )


class DefragRunStatus(ApiModel):
    """The last defragmentation run: members one at a time, followers first."""

    model_config = _LENIENT

    trigger: str = Field(max_length=32, description="NoSpace, Threshold or Schedule.")
    start_time: datetime = Field(description="When its first member was defragmented.")
    members: list[DefraggedMember] = Field(
        default_factory=list, description="The members done so far, in order."
    )


class NoSpaceStatus(ApiModel):
    """Recovery from the NOSPACE alarm under way: the history was compacted."""

    model_config = _LENIENT

    compacted_at: datetime = Field(description="When the key history was compacted.")
    db_size_before: int = Field(
        ge=0,
        description="The largest member backend in bytes when the alarm was handled.",
        json_schema_extra=_INT64,
    )
    revision: int | None = Field(
        default=None,
        ge=0,
        description=(
            "The cluster's revision when the history was compacted. Under NOSPACE etcd takes"
            " no writes, so a cluster now past it has taken writes since: the record is of an"
            " earlier alarm and the next one is compacted afresh."
        ),
        json_schema_extra=_INT64,
    )


class MaintenanceStatus(ApiModel):
    """Space: the quota, active alarms, NOSPACE recovery and defragmentation."""

    model_config = _LENIENT

    quota_backend_bytes: int | None = Field(
        default=None,
        ge=0,
        description="The backend quota members run with (NOSPACE is raised at it).",
        json_schema_extra=_INT64,
    )
    alarms: list[str] | None = Field(
        default=None, description="Active etcd alarms, as <member>:<alarm> (e.g. etcd-1:NOSPACE)."
    )
    no_space: NoSpaceStatus | None = Field(
        default=None, description="Set while a NOSPACE alarm is being recovered from."
    )
    last_defrag: DefragRunStatus | None = Field(
        default=None, description="The last defragmentation run."
    )
