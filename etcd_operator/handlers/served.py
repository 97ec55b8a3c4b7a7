"""Which certificate a member serves now: a TLS handshake with its client port, nothing sent.

What a Secret holds reaches a running member only once the kubelet re-renders its volume, so
"the member presents a new-CA certificate" is read from the member itself.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from etcd_operator.etcd import TLSConfig

_TIMEOUT = 3.0


def _context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=tls.ca_cert.decode())
    if tls.client_cert and tls.client_key:
        # ssl loads a key pair from files only; they live as long as this call.
        with tempfile.TemporaryDirectory() as d:
            cert, key = Path(d) / "tls.crt", Path(d) / "tls.key"
            cert.write_bytes(tls.client_cert)
            key.touch(mode=0o600)
            key.write_bytes(tls.client_key)
            context.load_cert_chain(cert, key)
    return context


async def served_certificate(url: str, tls: TLSConfig) -> bytes | None:
    """The DER certificate `url` (https://host:port) serves, verified against `tls.ca_cert`;
    None when the handshake fails (unreachable, or not trusted)."""
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        return None
    context = await asyncio.to_thread(_context, tls)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                parts.hostname, parts.port, ssl=context, server_hostname=parts.hostname
            ),
            _TIMEOUT,
        )
    except (OSError, ssl.SSLError, TimeoutError):
        return None
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    except ValueError:  # the connection closed before the handshake finished
        return None
    else:
        return bytes(der) if der else None
    finally:
        writer.close()


async def all_served(urls: Sequence[str], tls: TLSConfig) -> list[bytes | None]:
    return list(await asyncio.gather(*(served_certificate(u, tls) for u in urls)))
