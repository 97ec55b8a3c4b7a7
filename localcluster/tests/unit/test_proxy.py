"""The userspace service proxy forwards ClusterIP ports to ready EndpointSlice endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

from localcluster import proxy


def slice_(ready: dict[str, bool | None]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "labels": {"kubernetes.io/service-name": "client"}},
        "ports": [{"name": "client", "port": 2379}, {"name": "peer", "port": 2380}],
        "endpoints": [
            {"addresses": [ip], "conditions": {} if r is None else {"ready": r}}
            for ip, r in ready.items()
        ],
    }


def test_backends_are_ready_endpoints_on_the_matching_target_port() -> None:
    svc = {
        "metadata": {"namespace": "ns", "name": "client"},
        "spec": {"clusterIP": "10.214.0.9", "ports": [{"name": "client", "port": 80}]},
    }
    headless = {"metadata": {"namespace": "ns", "name": "h"}, "spec": {"clusterIP": "None"}}
    slices = [slice_({"10.213.0.10": True, "10.213.0.11": False, "10.213.0.12": None})]
    assert proxy.backends_by_port([svc, headless], slices) == {
        ("10.214.0.9", 80): [("10.213.0.10", 2379), ("10.213.0.12", 2379)]
    }


def test_forward_pipes_both_directions_and_skips_refusing_endpoints() -> None:
    async def scenario() -> bytes:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"echo:" + await r.read())
            await w.drain()
            w.close()

        backend = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = backend.sockets[0].getsockname()[1]
        p = proxy.ServiceProxy()
        p.backends = {("127.0.0.1", 0): [("127.0.0.1", 1), ("127.0.0.1", port)]}
        front = await asyncio.start_server(
            lambda r, w: p._forward(("127.0.0.1", 0), r, w), "127.0.0.1", 0
        )
        r, w = await asyncio.open_connection("127.0.0.1", front.sockets[0].getsockname()[1])
        w.write(b"hello")
        w.write_eof()
        data = await asyncio.wait_for(r.read(), 5)
        front.close()
        backend.close()
        return data

    assert asyncio.run(scenario()) == b"echo:hello"
