"""How the operator connects to one etcd cluster: endpoints, TLS material, credentials, timeouts.

This is the single place TLS and auth enter the etcd layer: handlers build an
``EtcdConfig`` (from the custom resource and its Secrets) and every call takes
its channels, credentials and deadlines from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class TLSConfig:
    """Client-side TLS material, PEM bytes (read from Secrets by the caller, not from disk here)."""

    ca_cert: bytes
    client_cert: bytes | None = None
    client_key: bytes | None = field(default=None, repr=False)
    # Name to verify the server certificate against when it differs from the endpoint host
    # (e.g. connecting by IP to a member whose certificate names its DNS name).
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key must be given together")


@dataclass(frozen=True)
class Credentials:
    """etcd user and password; the client exchanges them for a token per connection."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class EtcdConfig:
    """Connection settings for one etcd cluster.

    ``endpoints`` are client URLs (``http://host:port``, ``https://host:port``) or bare
    ``host:port``. Cluster-wide calls fail over across them in order; per-member calls
    (status, defragment, hash_kv, snapshot) name one of them, or any other client URL.

    Every call is bounded: connecting to a member takes at most ``dial_timeout``, and a
    request at most ``request_timeout`` (``defragment_timeout`` for defragment). A snapshot
    stream has no total deadline but fails when no chunk arrives for ``snapshot_chunk_timeout``.
    """

    endpoints: tuple[str, ...]
    tls: TLSConfig | None = None
    credentials: Credentials | None = None
    dial_timeout: float = 2.0
    request_timeout: float = 5.0
    defragment_timeout: float = 120.0
    snapshot_chunk_timeout: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.endpoints, str):
            raise TypeError("endpoints must be a tuple of strings, not one string")
        # Accept any sequence (e.g. a list from a spec) but keep the value hashable and frozen.
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        if not self.endpoints:
            raise ValueError("at least one endpoint is required")
        for endpoint in self.endpoints:
            parse_endpoint(endpoint, tls=self.tls is not None)
        for name in ("dial_timeout", "request_timeout", "defragment_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.snapshot_chunk_timeout <= 0:
            raise ValueError("snapshot_chunk_timeout must be positive")


def parse_endpoint(endpoint: str, *, tls: bool) -> str:
    """Return the gRPC target ``host:port`` of a client URL, checking its scheme against TLS."""
    if "://" not in endpoint:
        target = endpoint
    else:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"unsupported endpoint scheme in {endpoint!r}")
        # A mismatch would either send plaintext to a TLS port or fail every handshake;
        # better to refuse at configuration time.
        if (parts.scheme == "https") != tls:
            raise ValueError(
                f"endpoint {endpoint!r} does not match the configuration "
                f"(TLS {'enabled' if tls else 'disabled'})"
            )
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"endpoint {endpoint!r} must not have a path or query")
        target = parts.netloc
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"endpoint {endpoint!r} must include host and port")
    return target
