"""Snapshots in object storage: where they go, streaming them there and back, verified.

The whole API (the backup Job writes, a restore reads):

    location = S3Location(bucket, key, endpoint_url=..., credentials=S3Credentials(...))
    # or FileLocation(PurePosixPath("/backup/etcd/name.db")) on a mounted claim

    async with open_writer(location) as writer:   # leaving without commit() aborts:
        async for chunk in snapshot_stream:        # no object / no file appears
            await writer.write(chunk)
        await writer.commit(manifest)              # snapshot complete, then `<key>.json`

    manifest = await read_manifest(location)       # NotFound / IntegrityError
    async with open_reader(location) as reader:    # chunks of the snapshot as stored
        async for chunk in reader: ...
    manifest = await fetch(location, Path("/tmp/snap.db"))  # verified local copy (atomic)
    manifest = await verify(location)              # stream it, check size and sha256
    await delete(location)                         # manifest first, then the snapshot

Memory stays flat: nothing holds a whole snapshot (S3 parts of `part_size` bytes, at most
two uploading while the next fills). Every failure is an ObjectStoreError with a `reason`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from etcd_operator.objectstore.errors import IntegrityError, NotFound, ObjectStoreError
from etcd_operator.objectstore.location import (
    Encryption,
    FileLocation,
    Location,
    S3Credentials,
    S3Location,
    SSEAlgorithm,
    join_key,
)
from etcd_operator.objectstore.manifest import Manifest
from etcd_operator.objectstore.stream import DEFAULT_PART_SIZE, SnapshotReader, SnapshotWriter

__all__ = [
    "DEFAULT_PART_SIZE",
    "Encryption",
    "FileLocation",
    "IntegrityError",
    "Location",
    "Manifest",
    "NotFound",
    "ObjectStoreError",
    "S3Credentials",
    "S3Location",
    "SSEAlgorithm",
    "SnapshotReader",
    "SnapshotWriter",
    "delete",
    "fetch",
    "join_key",
    "open_reader",
    "open_writer",
    "read_manifest",
    "verify",
]


def _writer(location: Location, part_size: int) -> SnapshotWriter:
    if isinstance(location, S3Location):
        from etcd_operator.objectstore.s3 import S3Writer

        return S3Writer(location, part_size=part_size)
    from etcd_operator.objectstore.files import FileWriter

    return FileWriter(location)


def _reader(location: Location) -> SnapshotReader:
    if isinstance(location, S3Location):
        from etcd_operator.objectstore.s3 import S3Reader

        return S3Reader(location)
    from etcd_operator.objectstore.files import FileReader

    return FileReader(location)


@asynccontextmanager
async def open_writer(
    location: Location, *, part_size: int = DEFAULT_PART_SIZE
) -> AsyncIterator[SnapshotWriter]:
    """A writer for a new snapshot at `location`; aborted unless committed in the block."""
    writer = _writer(location, part_size)
    await writer.start()
    try:
        yield writer
    except BaseException:
        await writer.abort()
        raise
    if not writer.committed:
        await writer.abort()


@asynccontextmanager
async def open_reader(location: Location) -> AsyncIterator[SnapshotReader]:
    """The stored snapshot's bytes as chunks; `reader.size`/`.sha256` grow as it is read."""
    reader = _reader(location)
    await reader.start()
    try:
        yield reader
    finally:
        await reader.close()


async def read_manifest(location: Location) -> Manifest:
    """The manifest beside the snapshot; NotFound if there is none (no complete backup)."""
    data = await _reader(location.manifest()).read_all()
    try:
        return Manifest.from_json(data)
    except ValueError as e:
        raise IntegrityError(f"{location.manifest().uri}: {e}") from None


async def verify(location: Location) -> Manifest:
    """Stream the snapshot and check its size and sha256 against the manifest."""
    manifest = await read_manifest(location)
    async with open_reader(location) as reader:
        async for _ in reader:
            pass
    _check(location, manifest, reader.size, reader.sha256)
    return manifest


async def fetch(location: Location, path: Path) -> Manifest:
    """Copy the snapshot to the local file `path`, verified against the manifest; `path`
    appears only complete and verified (a temporary name, fsync, rename)."""
    manifest = await read_manifest(location)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    out = await asyncio.to_thread(open, tmp, "wb")
    try:
        async with open_reader(location) as reader:
            async for chunk in reader:
                await asyncio.to_thread(out.write, chunk)
        _check(location, manifest, reader.size, reader.sha256)
        await asyncio.to_thread(_flush, out)
        out.close()
        tmp.replace(path)
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    return manifest


def _flush(out: object) -> None:
    out.flush()  # type: ignore[attr-defined]
    os.fsync(out.fileno())  # type: ignore[attr-defined]


def _check(location: Location, manifest: Manifest, size: int, sha256: str) -> None:
    if size != manifest.size:
        raise IntegrityError(f"{location.uri}: {size} bytes, the manifest says {manifest.size}")
    if sha256 != manifest.sha256:
        raise IntegrityError(
            f"{location.uri}: sha256 {sha256}, the manifest says {manifest.sha256}"
        )


async def delete(location: Location) -> None:
    """Remove the snapshot and its manifest; what is already gone counts as removed. The
    manifest goes first: a snapshot left without one (a failure between the two) is
    incomplete to every reader, never a backup that seems whole but is not."""
    if isinstance(location, S3Location):
        from etcd_operator.objectstore.s3 import delete_object

        await delete_object(location.manifest())
        await delete_object(location)
        return
    from etcd_operator.objectstore.files import delete_file

    await delete_file(location.manifest())
    await delete_file(location)
