"""Snapshots as files on a mounted volume (a PVC): a temporary name, fsync, rename.

A reader never sees a partial file under the final name: the snapshot is written as
`.<name>.partial`, flushed to disk and renamed; the manifest follows the same way, and the
directory is synced after each rename so both survive a crash of the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from etcd_operator.objectstore.errors import NotFound, ObjectStoreError
from etcd_operator.objectstore.location import FileLocation
from etcd_operator.objectstore.manifest import Manifest
from etcd_operator.objectstore.stream import SnapshotReader, SnapshotWriter

READ_CHUNK = 1024 * 1024
WRITE_BATCH = 1024 * 1024  # chunks are gathered to this size: one thread hop per MiB


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = _partial(path)
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    _sync_dir(path.parent)


def _os_error(location: FileLocation, e: OSError) -> ObjectStoreError:
    reason = {
        13: "PermissionDenied",  # EACCES
        28: "NoSpaceLeft",  # ENOSPC
        30: "ReadOnlyFilesystem",  # EROFS
    }.get(e.errno or 0, "FilesystemError")
    return ObjectStoreError(f"{location.uri}: {e.strerror or e}", reason=reason)


class FileWriter(SnapshotWriter):
    def __init__(self, location: FileLocation) -> None:
        self.location = location
        self.path = Path(location.path)
        self._out: BinaryIO | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A partial file of an earlier, killed attempt is simply replaced.
            self._out = await asyncio.to_thread(open, _partial(self.path), "wb")
        except OSError as e:
            raise _os_error(self.location, e) from None

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= WRITE_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        assert self._out is not None, "start() first"
        batch = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        try:
            await asyncio.to_thread(self._out.write, batch)
        except OSError as e:
            raise _os_error(self.location, e) from None

    async def commit(self, manifest: Manifest) -> None:
        if self.committed:
            return
        await self._flush()
        out, self._out = self._out, None
        assert out is not None, "start() first"
        try:
            await asyncio.to_thread(_finish, out, self.path)
            await asyncio.to_thread(
                _write_atomically, Path(self.location.manifest().path), manifest.to_json()
            )
        except OSError as e:
            raise _os_error(self.location, e) from None
        self.committed = True

    async def abort(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if not self.committed:
            with contextlib.suppress(OSError):
                _partial(self.path).unlink(missing_ok=True)


def _finish(out: BinaryIO, path: Path) -> None:
    try:
        out.flush()
        os.fsync(out.fileno())
    finally:
        out.close()
    # A manifest of an earlier backup at this path goes first: it would describe other bytes.
    with contextlib.suppress(FileNotFoundError):
        Path(str(path) + ".json").unlink()
    _partial(path).replace(path)
    _sync_dir(path.parent)


class FileReader(SnapshotReader):
    def __init__(self, location: FileLocation) -> None:
        super().__init__()
        self.location = location
        self._in: BinaryIO | None = None

    async def start(self) -> None:
        try:
            self._in = await asyncio.to_thread(open, Path(self.location.path), "rb")
        except FileNotFoundError:
            raise NotFound(f"{self.location.uri} does not exist") from None
        except OSError as e:
            raise _os_error(self.location, e) from None

    async def _next_chunk(self) -> bytes:
        assert self._in is not None, "start() first"
        return await asyncio.to_thread(self._in.read, READ_CHUNK)

    async def close(self) -> None:
        if self._in is not None:
            self._in.close()
            self._in = None


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
    _sync_dir(path.parent)


async def delete_file(location: FileLocation) -> None:
    """Remove the file (gone already: nothing to do) and sync its directory."""
    path = Path(location.path)
    try:
        if path.parent.is_dir():
            await asyncio.to_thread(_unlink, path)
    except OSError as e:
        raise _os_error(location, e) from None
