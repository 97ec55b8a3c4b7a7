"""Fields etcd 3.6 added to `StatusResponse` that aetcd's bundled stubs (etcd 3.5's proto) lack.

protobuf keeps unknown fields when parsing, so the response re-serialized and parsed with a
message that declares only these fields yields them. Numbers and types as in etcd 3.6's
rpc.proto: `storageVersion = 11` (string), `downgradeInfo = 13` (DowngradeInfo: `enabled = 1`
bool, `targetVersion = 2` string). etcd 3.5 members send none of them (all default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "etcd_operator.status36"


def _build() -> Any:
    f = descriptor_pb2.FileDescriptorProto(
        name="etcd_operator_status36.proto", package=_PACKAGE, syntax="proto3"
    )
    info = f.message_type.add(name="DowngradeInfo")
    info.field.add(name="enabled", number=1, type=8, label=1)  # TYPE_BOOL
    info.field.add(name="targetVersion", number=2, type=9, label=1)  # TYPE_STRING
    extras = f.message_type.add(name="StatusExtras")
    extras.field.add(name="storageVersion", number=11, type=9, label=1)
    extras.field.add(
        name="downgradeInfo",
        number=13,
        type=11,  # TYPE_MESSAGE
        label=1,
        type_name=f".{_PACKAGE}.DowngradeInfo",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.StatusExtras"))


_StatusExtras = _build()


@dataclass(frozen=True)
class StatusExtras:
    storage_version: str  # "" from members older than 3.6
    downgrade_enabled: bool
    downgrade_target: str  # "" unless a downgrade is enabled


def status_extras(serialized: bytes) -> StatusExtras:
    """The 3.6 fields of a serialized `StatusResponse` (defaults when absent)."""
    msg = _StatusExtras.FromString(serialized)
    info = msg.downgradeInfo
    return StatusExtras(str(msg.storageVersion), bool(info.enabled), str(info.targetVersion))
