"""gRPC channels to etcd members: one per endpoint, bound to the event loop that made it.

grpc.aio channels belong to the loop they were created in, so a channel is reused only
from that loop. A channel that failed at the transport level is closed and replaced on
the next call, so a restarted member is reachable again at once instead of after gRPC's
reconnect back-off.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import grpc
from aetcd import rpc as pb

from etcd_operator.etcd.config import EtcdConfig, parse_endpoint
from etcd_operator.etcd.errors import EtcdUnreachable

_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    # Responses (a big Range, a member list of a large cluster) may exceed gRPC's 4 MiB
    # default; etcd's own Go client lifts the limit the same way.
    ("grpc.max_receive_message_length", 2**31 - 1),
    # A stream's receive window: with the default (64 KiB, grown slowly by BDP probing) a
    # snapshot stream waits on window updates; 4 MiB let it run ~1.5x faster (measured,
    # bench/backup_throughput.py). Memory is used only while the reader lags.
    ("grpc.http2.lookahead_bytes", 4 * 1024 * 1024),
    # Detect a silently dead peer (partition, frozen process) during long calls such as a
    # snapshot. etcd rejects pings more often than --grpc-keepalive-min-time (5s default).
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Each channel gets its own connection: closing a stale channel must really drop its
    # TCP connection, not hand the next channel the same shared subchannel.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


@dataclass
class Connection:
    """A channel to one endpoint plus its stubs and (with auth) its token."""

    endpoint: str
    channel: Any
    loop: asyncio.AbstractEventLoop
    kv: Any
    cluster: Any
    maintenance: Any
    auth: Any
    # The token: a credential too, kept out of reprs.
    metadata: tuple[tuple[str, str], ...] | None = field(default=None, repr=False)
    auth_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def stub(self, service: str) -> Any:
        return getattr(self, service)


async def resolve(target: str) -> str:
    """The gRPC target for ``host:port`` with the host resolved by the system resolver.

    gRPC's bundled resolver (c-ares) reads /etc/hosts its own way and, with several names
    on one line, was seen to hand back another member's address. Resolving through the
    operating system (getaddrinfo: /etc/hosts, cluster DNS) gives what every other client
    on the machine sees, and a new channel re-resolves after a pod moved.
    """
    host, _, port = target.rpartition(":")
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return target
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(bare, int(port), type=socket.SOCK_STREAM)
    except OSError as e:
        # Not resolvable yet (a new pod's name): unreachable now, asked again next time. A
        # channel left to resolve the name itself would keep whatever address it found later,
        # which was seen to be another member's.
        raise EtcdUnreachable(f"cannot resolve {bare}: {e}", endpoint=target) from None
    family, _, _, _, sockaddr = infos[0]
    if family == socket.AF_INET6:
        return f"ipv6:[{sockaddr[0]}]:{port}"
    return f"ipv4:{sockaddr[0]}:{port}"


def open_connection(config: EtcdConfig, endpoint: str, address: str | None = None) -> Connection:
    """A channel to ``endpoint``, dialling ``address`` (a resolved gRPC target) when given."""
    target = parse_endpoint(endpoint, tls=config.tls is not None)
    host = target.rpartition(":")[0].strip("[]")
    options: list[tuple[str, int | str]] = list(_CHANNEL_OPTIONS)
    if address is not None and address != target:
        # Keep the endpoint's name as the HTTP/2 authority and the name TLS verifies.
        options.append(("grpc.default_authority", target))
    if config.tls is None:
        channel = grpc.aio.insecure_channel(address or target, options=options)
    else:
        options.append(("grpc.ssl_target_name_override", config.tls.server_name or host))
        creds = grpc.ssl_channel_credentials(
            root_certificates=config.tls.ca_cert,
            private_key=config.tls.client_key,
            certificate_chain=config.tls.client_cert,
        )
        channel = grpc.aio.secure_channel(address or target, creds, options=options)
    return Connection(
        endpoint=endpoint,
        channel=channel,
        loop=asyncio.get_running_loop(),
        kv=pb.KVStub(channel),
        cluster=pb.ClusterStub(channel),
        maintenance=pb.MaintenanceStub(channel),
        auth=pb.AuthStub(channel),
    )


async def wait_ready(conn: Connection, dial_timeout: float) -> None:
    """Connect within ``dial_timeout`` or raise EtcdUnreachable (the request is then not sent).

    Without this a call to a frozen member (TCP accepted by the kernel, no HTTP/2
    handshake) would spend its whole request deadline connecting, and a refused
    connection would not be told apart from a request etcd may have applied.
    """
    ready = grpc.ChannelConnectivity.READY
    failed = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)
    state = conn.channel.get_state(try_to_connect=True)
    if state == ready:
        return
    try:
        async with asyncio.timeout(dial_timeout):
            while state != ready:
                if state in failed:
                    raise EtcdUnreachable("connection failed", endpoint=conn.endpoint)
                await conn.channel.wait_for_state_change(state)
                state = conn.channel.get_state(try_to_connect=True)
    except TimeoutError:
        raise EtcdUnreachable(
            f"not connected within {dial_timeout}s", endpoint=conn.endpoint
        ) from None
