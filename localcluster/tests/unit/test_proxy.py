"""The userspace service proxy forwards ClusterIP ports to ready EndpointSlice endpoints."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from localcluster import netpolicy, proxy


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


def test_only_endpoints_whose_policies_admit_the_client_get_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = {
        "metadata": {"namespace": "a", "name": "etcd", "labels": {"app": "etcd"}},
        "spec": {},
        "status": {"phase": "Running", "podIP": "10.213.0.10"},
    }
    only_peers = {
        "metadata": {"namespace": "a", "name": "p"},
        "spec": {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "10.213.0.11/32"}}]}],
        },
    }
    cluster = netpolicy.Cluster([endpoint], [only_peers], {})

    async def scenario() -> list[tuple[str, int]]:
        p = proxy.ServiceProxy()
        p.cluster = cluster
        p.backends = {("10.214.0.9", 80): [("10.213.0.10", 2379)]}
        seen: list[tuple[str, int]] = []

        async def record(host: str, port: int) -> Any:
            seen.append((host, port))
            raise OSError("test: no real endpoint")

        class Writer:
            def __init__(self, peer: str) -> None:
                self.peer = peer

            def get_extra_info(self, name: str) -> Any:
                return (self.peer, 40000) if name == "peername" else None

            def close(self) -> None:
                pass

        monkeypatch.setattr(proxy.asyncio, "open_connection", record)
        for client in ("10.213.0.12", "10.213.0.11", "10.214.0.9"):
            writer: Any = Writer(client)
            await p._forward(("10.214.0.9", 80), asyncio.StreamReader(), writer)
        return seen

    # Refused for .12; admitted for .11 (the block) and for the host (a ClusterIP source).
    assert asyncio.run(scenario()) == [("10.213.0.10", 2379), ("10.213.0.10", 2379)]
