"""Write WAL segments in etcd's on-disk framing, for tests of what a data directory holds."""

from __future__ import annotations

from pathlib import Path


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def frame(record: bytes) -> bytes:
    padding = (8 - len(record) % 8) % 8
    length = len(record) | ((0x80 | padding) << 56 if padding else 0)
    return length.to_bytes(8, "little") + record + b"\0" * padding


def record(kind: int, data: bytes = b"", crc: int = 0) -> bytes:
    body = _field_varint(1, kind) + _field_varint(2, crc)
    return body + (_field_bytes(3, data) if data else b"")


def segment(member_id: int, cluster_id: int) -> bytes:
    """The start of a segment as etcd writes it: crc record, metadata record, snapshot record,
    then the zeroes of a preallocated file."""
    metadata = _field_varint(1, member_id) + _field_varint(2, cluster_id)
    return (
        frame(record(4, crc=0))
        + frame(record(1, metadata, crc=0x1234ABCD))
        + frame(record(5, b"\x08\x00\x10\x00"))
        + b"\0" * 4096
    )


def write_wal(data_dir: Path, member_id: int, cluster_id: int = 0xC1, *, name: str = "") -> Path:
    wal = data_dir / "member" / "wal"
    wal.mkdir(parents=True, exist_ok=True)
    path = wal / (name or "0000000000000000-0000000000000000.wal")
    path.write_bytes(segment(member_id, cluster_id))
    return path
