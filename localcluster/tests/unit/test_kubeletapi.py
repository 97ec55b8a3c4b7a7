"""The node's kubelet API serves container logs as the API server asks for them."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

from localcluster.node import kubeletapi


async def get(port: int, path: str, stop_after: float | None = None) -> bytes:
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    if stop_after is None:
        data = await reader.read()
    else:
        data = b""
        deadline = asyncio.get_running_loop().time() + stop_after
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                chunk = await asyncio.wait_for(reader.read(1024), left)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    writer.close()
    return data


def test_logs_tail_previous_and_follow(tmp_path: Path) -> None:
    current, previous = tmp_path / "c.log", tmp_path / "c.previous.log"
    current.write_text("one\ntwo\nthree\n")
    previous.write_text("before restart\n")
    alive = {"yes": True}

    def find(ns: str, pod: str, container: str, prev: bool) -> Path | None:
        if (ns, pod, container) != ("ns", "p", "c"):
            return None
        return previous if prev else current

    async def scenario() -> list[bytes]:
        api = kubeletapi.KubeletAPI(find, lambda ns, pod: alive["yes"])
        tls = kubeletapi.serving_context(tmp_path / "tls", "lc-node-0")
        server = await api.serve(0, tls, host="127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        tail = await get(port, "/containerLogs/ns/p/c?tailLines=1")
        prev = await get(port, "/containerLogs/ns/p/c?previous=true")
        missing = await get(port, "/containerLogs/ns/p/other")

        async def append_then_end() -> None:
            await asyncio.sleep(0.5)
            with current.open("a") as f:
                f.write("four\n")
            await asyncio.sleep(0.5)
            alive["yes"] = False

        follow, _ = await asyncio.gather(
            get(port, "/containerLogs/ns/p/c?follow=true", stop_after=3), append_then_end()
        )
        server.close()
        return [tail, prev, missing, follow]

    tail, prev, missing, follow = asyncio.run(scenario())
    assert tail.startswith(b"HTTP/1.1 200") and tail.endswith(b"\r\n\r\nthree\n")
    assert prev.endswith(b"before restart\n")
    assert missing.startswith(b"HTTP/1.1 404")
    assert follow.endswith(b"one\ntwo\nthree\nfour\n")
