"""What an etcd data directory holds, read from etcd's own write-ahead log.

Every WAL segment (`member/wal/<seq>-<index>.wal`) starts with a metadata record naming the
member and cluster IDs the log belongs to. That is the durable fact member-init needs: "this
volume holds the raft log of member X", without asking a running etcd.

A segment is a series of frames: an 8-byte little-endian length (low 56 bits: record size;
top byte: 0x80 | padding when the record is padded to 8 bytes), then a `walpb.Record`
protobuf (type = field 1, crc = 2, data = 3). The metadata record's data is an
`etcdserverpb.Metadata` (NodeID = field 1, ClusterID = 2). Three varint/bytes fields are all we
read, so the decoder below is a few lines rather than a generated protobuf module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_METADATA_RECORD = 1
_CRC_RECORD = 4
# A segment's first records are the crc and metadata records; a few frames suffice.
_FIRST_FRAMES = 4
_LENGTH_MASK = (1 << 56) - 1
_MAX_METADATA_RECORD = 1 << 16


class WalError(ValueError):
    """The WAL exists but cannot be read as one (torn or foreign bytes)."""


@dataclass(frozen=True, slots=True)
class WalIdentity:
    """Whose raft log a data directory holds."""

    member_id: int
    cluster_id: int


def wal_dir(data_dir: Path) -> Path:
    return data_dir / "member" / "wal"


def has_wal(data_dir: Path) -> bool:
    """etcd creates the WAL in a temporary directory and renames it: present means complete."""
    return any(wal_dir(data_dir).glob("*.wal"))


def read_identity(data_dir: Path) -> WalIdentity | None:
    """The member and cluster IDs of the WAL in `data_dir`; None when there is no WAL."""
    segments = sorted(wal_dir(data_dir).glob("*.wal"))
    if not segments:
        return None
    # The newest segment is the one etcd opens on restart; every segment repeats the metadata.
    with segments[-1].open("rb") as f:
        return _identity_from(f.read(_FIRST_FRAMES * (8 + _MAX_METADATA_RECORD)), segments[-1])


def _identity_from(data: bytes, source: Path) -> WalIdentity:
    offset = 0
    for _ in range(_FIRST_FRAMES):
        if offset + 8 > len(data):
            break
        field = int.from_bytes(data[offset : offset + 8], "little")
        size = field & _LENGTH_MASK
        padding = (field >> 56) & 0x7 if field >> 63 else 0
        start, end = offset + 8, offset + 8 + size
        if size == 0 or end > len(data):
            break
        fields = _decode(data[start:end])
        kind = fields.get(1, 0)
        if kind == _METADATA_RECORD:
            payload = fields.get(3, b"")
            meta = _decode(payload if isinstance(payload, bytes) else b"")
            member, cluster = meta.get(1, 0), meta.get(2, 0)
            if not isinstance(member, int) or not isinstance(cluster, int) or member == 0:
                raise WalError(f"{source}: metadata record names no member")
            return WalIdentity(member_id=member, cluster_id=cluster)
        if kind != _CRC_RECORD:
            break
        offset = end + padding
    raise WalError(f"{source}: no metadata record at the start of the segment")


def _decode(message: bytes) -> dict[int, int | bytes]:
    """Varint and length-delimited fields of one protobuf message (last value wins)."""
    fields: dict[int, int | bytes] = {}
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        number, wire = key >> 3, key & 0x7
        if wire == 0:
            fields[number], pos = _varint(message, pos)
        elif wire == 2:
            length, pos = _varint(message, pos)
            if pos + length > len(message):
                raise WalError("truncated field")
            fields[number], pos = message[pos : pos + length], pos + length
        elif wire == 5:
            fields[number], pos = int.from_bytes(message[pos : pos + 4], "little"), pos + 4
        elif wire == 1:
            fields[number], pos = int.from_bytes(message[pos : pos + 8], "little"), pos + 8
        else:
            raise WalError(f"unexpected wire type {wire}")
    return fields


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            break
    raise WalError("malformed varint")
