"""A client writing throughout an operation, as an application would: one put after another,
remembering what etcd acknowledged so that every acknowledged write can be read back after."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from etcd_operator.etcd import EtcdClient, EtcdError, TLSConfig
from harness.clusters import etcd_client


@dataclass
class Writer:
    """Puts `<prefix>/<n>` one after another until stopped. A put that fails (e.g. sent to a
    member being restarted or removed) was not acknowledged, so nothing was promised."""

    prefix: str = "w"
    read_back: bool = False  # also get each key right after its put (a reader's view)
    acknowledged: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, etcd: EtcdClient) -> None:
        n = 0
        while not self.stop.is_set():
            key, value = f"{self.prefix}/{n:06d}", f"v{n}"
            try:
                await etcd.put(key, value)
                self.acknowledged[key] = value
                if self.read_back:
                    got = await etcd.get(key)
                    if got is None or got.value != value.encode():
                        self.failures.append(f"{key}: read back {got}")
            except EtcdError as e:
                self.failures.append(f"{key}: {e}")
            n += 1
            await asyncio.sleep(0.02)

    async def missing(self, etcd: EtcdClient) -> list[str]:
        """Acknowledged keys that do not read back with their value."""
        lost = []
        for key, value in self.acknowledged.items():
            got = await etcd.get(key)
            if got is None or got.value != value.encode():
                lost.append(key)
        return lost


@contextlib.asynccontextmanager
async def writing(
    urls: tuple[str, ...],
    tls: TLSConfig | None = None,
    prefix: str = "w",
    *,
    read_back: bool = False,
) -> AsyncIterator[Writer]:
    """A writer running against `urls` for the duration of the block."""
    writer = Writer(prefix, read_back)
    async with etcd_client(urls, tls) as etcd:
        task = asyncio.create_task(writer.run(etcd))
        try:
            yield writer
        finally:
            writer.stop.set()
            await task
