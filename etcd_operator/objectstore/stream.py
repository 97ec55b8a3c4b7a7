"""The two halves every backend implements: a snapshot writer and a snapshot reader."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Self

from etcd_operator.objectstore.manifest import Manifest

# S3 parts (>= 5 MiB but the last); bigger parts mean fewer requests, more memory.
DEFAULT_PART_SIZE = 8 * 1024 * 1024


class SnapshotWriter(ABC):
    """Write a snapshot in order, then `commit` (the snapshot becomes visible, then its
    manifest) or `abort` (nothing becomes visible). Both are safe to call twice."""

    committed = False

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def write(self, chunk: bytes) -> None: ...

    @abstractmethod
    async def commit(self, manifest: Manifest) -> None: ...

    @abstractmethod
    async def abort(self) -> None: ...


class SnapshotReader(ABC):
    """An async iterator of a stored snapshot's chunks; `size` and `sha256` cover what was
    read so far (the whole snapshot once the iteration ended)."""

    def __init__(self) -> None:
        self.size = 0
        self._hash = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next_chunk()
        if not chunk:
            raise StopAsyncIteration
        self.size += len(chunk)
        self._hash.update(chunk)
        return chunk

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def _next_chunk(self) -> bytes:
        """The next chunk, b"" at the end."""

    @abstractmethod
    async def close(self) -> None: ...

    async def read_all(self) -> bytes:
        """The whole (small) object: manifests only."""
        await self.start()
        try:
            return b"".join([chunk async for chunk in self])
        finally:
            await self.close()
