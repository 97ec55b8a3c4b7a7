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
from etcd_operator.objectstore.pipeline import Pipeline
from etcd_operator.objectstore.stream import SnapshotReader, SnapshotWriter
from etcd_operator.objectstore.writeback import Writeback

READ_CHUNK = 1024 * 1024
WRITE_BATCH = 1024 * 1024  # chunks are gathered to this size: one thread hop per MiB
QUEUED_BATCHES = 4  # batches waiting for or in the writer thread: the memory it may hold
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16


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
    """Chunks gathered into batches, written in order by one worker thread while the stream
    goes on (os.writev: the kernel copies each chunk, no join)."""

    def __init__(self, location: FileLocation) -> None:
        self.location = location
        self.path = Path(location.path)
        self._fd: int | None = None
        self._writeback: Writeback | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._jobs = Pipeline("snapshot-file", workers=1, depth=QUEUED_BATCHES)

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A partial file of an earlier, killed attempt is simply replaced.
            self._fd = await asyncio.to_thread(os.open, _partial(self.path), _FLAGS, 0o666)
        except OSError as e:
            raise _os_error(self.location, e) from None
        self._writeback = Writeback(self._fd)

    async def write(self, chunk: bytes) -> None:
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= WRITE_BATCH:
            await self._send()

    async def _send(self) -> None:
        assert self._fd is not None, "start() first"
        batch, self._pending, self._pending_size = self._pending, [], 0
        if batch:
            await self._jobs.submit(self._write, batch)

    def _write(self, batch: list[bytes]) -> None:
        # In the worker thread, the only one that touches the file until commit.
        assert self._fd is not None and self._writeback is not None
        try:
            _write_all(self._fd, batch)
            self._writeback.wrote(sum(len(c) for c in batch))
        except OSError as e:
            raise _os_error(self.location, e) from None

    async def commit(self, manifest: Manifest) -> None:
        if self.committed:
            return
        await self._send()
        await self._jobs.drain()
        await self._jobs.close()
        fd, self._fd = self._fd, None
        assert fd is not None, "start() first"
        try:
            await asyncio.to_thread(_finish, fd, self.path)
            await asyncio.to_thread(
                _write_atomically, Path(self.location.manifest().path), manifest.to_json()
            )
        except OSError as e:
            raise _os_error(self.location, e) from None
        self.committed = True

    async def abort(self) -> None:
        await self._jobs.close()  # no write may still run on the file removed below
        self._pending, self._pending_size = [], 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self.committed:
            with contextlib.suppress(OSError):
                _partial(self.path).unlink(missing_ok=True)


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """Every byte of `chunks`, in order (writev may write less than asked)."""
    views = [memoryview(c) for c in chunks]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def _finish(fd: int, path: Path) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
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
