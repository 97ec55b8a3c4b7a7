"""A userspace service proxy: ClusterIP:port -> ready endpoints, as kube-proxy's old mode.

Each Service ClusterIP is added as a /32 address on the pod bridge, so the host and
every pod (whose default route is the host) reach it; a TCP listener per service port
forwards each connection to one ready endpoint from the Service's EndpointSlices,
round-robin, trying the next endpoint when one refuses. TCP only.

NetworkPolicies hold here too: the proxy connects from the host, so the endpoint's own
rules (node/netpol.py) would see the node's address and let it in; instead each connection
goes only to endpoints whose ingress rules admit the client's address (netpolicy.Cluster).
A refused client is accepted and closed at once, not left to time out as behind kube-proxy.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import logging
import subprocess
from typing import Any

from localcluster import config, netpolicy, network

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Key = tuple[str, int]  # (cluster IP, service port)
CONNECT_TIMEOUT = 2.0


def backends_by_port(services: list[Obj], slices: list[Obj]) -> dict[Key, list[tuple[str, int]]]:
    """Ready (pod IP, target port) behind every ClusterIP:port, from EndpointSlices."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        name = (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
        if name:
            by_service.setdefault((s["metadata"]["namespace"], name), []).append(s)
    out: dict[Key, list[tuple[str, int]]] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        meta = svc["metadata"]
        for port in spec.get("ports") or []:
            if (port.get("protocol") or "TCP") != "TCP":
                continue
            targets = []
            for s in by_service.get((meta["namespace"], meta["name"]), []):
                wanted = port.get("name") or ""
                ports = s.get("ports") or []
                numbers = [p["port"] for p in ports if (p.get("name") or "") == wanted]
                for endpoint in s.get("endpoints") or []:
                    if (endpoint.get("conditions") or {}).get("ready") is False:
                        continue
                    targets += [(a, n) for a in endpoint.get("addresses") or [] for n in numbers]
            out[(ip, int(port["port"]))] = sorted(set(targets))
    return out


class ServiceProxy:
    def __init__(self) -> None:
        self.backends: dict[Key, list[tuple[str, int]]] = {}
        self.servers: dict[Key, asyncio.Server] = {}
        self.addresses: set[str] = set()
        self._turn = itertools.count()
        self._bridge: int | None = None
        self.cluster: netpolicy.Cluster | None = None

    async def sync(
        self, services: list[Obj], slices: list[Obj], cluster: netpolicy.Cluster | None = None
    ) -> None:
        self.backends = backends_by_port(services, slices)
        self.cluster = cluster
        for key in [k for k in self.servers if k not in self.backends]:
            self.servers.pop(key).close()
        bridge = network.bridge_ifindex()
        if bridge != self._bridge:  # (re)created bridge: its addresses are gone
            self._bridge, self.addresses = bridge, set()
        wanted_ips = {ip for ip, _ in self.backends}
        for ip in wanted_ips - self.addresses:
            await asyncio.to_thread(_address, "add", ip)
            self.addresses.add(ip)
        for key in self.backends:
            if key not in self.servers:
                try:
                    self.servers[key] = await asyncio.start_server(
                        functools.partial(self._forward, key), *key, reuse_address=True
                    )
                except OSError as e:
                    log.warning("cannot listen on %s:%s: %s", *key, e)
        for ip in self.addresses - wanted_ips:
            await asyncio.to_thread(_address, "del", ip)
            self.addresses.discard(ip)

    async def _forward(
        self, key: Key, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        targets = list(self.backends.get(key, []))
        peer = client_w.get_extra_info("peername")
        if self.cluster is not None and peer:
            source, cluster = str(peer[0]), self.cluster
            targets = [t for t in targets if _is_node(source) or cluster.admits(source, *t)]
        start = next(self._turn)
        for i in range(len(targets)):
            host, port = targets[(start + i) % len(targets)]
            try:
                server_r, server_w = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                continue
            try:
                await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))
            finally:
                server_w.close()
                client_w.close()
            return
        client_w.close()  # no ready endpoint: like kube-proxy, refuse


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other direction may still flow
    except OSError:
        # One side went away: drop the other too, as a TCP proxy would.
        writer.close()


_POD_NETWORK = ipaddress.ip_network(config.POD_CIDR)


def _is_node(source: str) -> bool:
    """Connections from the host come from the gateway or a ClusterIP, never a pod address."""
    address = ipaddress.ip_address(source)
    return source == config.GATEWAY_IP or address not in _POD_NETWORK


def _address(op: str, ip: str) -> None:
    subprocess.run(
        ["ip", "addr", op, f"{ip}/32", "dev", config.BRIDGE_NAME],
        capture_output=True,
        check=False,
    )
