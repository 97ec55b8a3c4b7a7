"""The part of the kubelet API the API server proxies to: container logs.

`kubectl logs [-f] [--previous] [--tail N]` reaches
``https://<node InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/containerLogs/...``
through the API server. Every agent listens on its own port on the gateway address with
a self-signed certificate (the API server verifies kubelet certificates only when given
--kubelet-certificate-authority). Nothing else of the kubelet API is served.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from localcluster import config

log = logging.getLogger(__name__)
BASE_PORT = 10250
FOLLOW_POLL_SECONDS = 0.3
# (namespace, pod, container, previous) -> the log file, or None when unknown.
LogLookup = Callable[[str, str, str, bool], Path | None]
# (namespace, pod) -> whether the pod still runs here (ends a follow).
Alive = Callable[[str, str], bool]


def serving_context(directory: Path, node: str) -> ssl.SSLContext:
    """A TLS context with a self-signed certificate for the node (made once, kept)."""
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    if not cert.exists() or not key.exists():
        directory.mkdir(parents=True, exist_ok=True)
        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node)])
        now = datetime.datetime.now(datetime.UTC)
        sans = [x509.DNSName(node), x509.IPAddress(ipaddress.ip_address(config.GATEWAY_IP))]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(private, hashes.SHA256())
        )
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines <= 0:
        return b""
    kept = data.splitlines(keepends=True)[-lines:]
    return b"".join(kept)


class KubeletAPI:
    def __init__(self, find_log: LogLookup, alive: Alive) -> None:
        self.find_log, self.alive = find_log, alive

    async def serve(
        self, port: int, tls: ssl.SSLContext, host: str = config.GATEWAY_IP
    ) -> asyncio.Server:
        return await asyncio.start_server(self._handle, host, port, ssl=tls)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode(errors="replace").split()
            while (await reader.readline()).strip():
                pass  # headers: nothing in them matters here
            if len(request) < 2 or request[0] != "GET":
                await _respond(writer, 405, b"method not allowed\n")
                return
            await self._route(urlsplit(request[1]), writer)
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("kubelet API request failed")
        finally:
            writer.close()

    async def _route(self, url: SplitResult, writer: asyncio.StreamWriter) -> None:
        path, query = url.path, parse_qs(url.query)
        parts = path.strip("/").split("/")
        if path in ("/healthz", "/readyz", "/livez"):
            await _respond(writer, 200, b"ok")
            return
        if len(parts) != 4 or parts[0] != "containerLogs":
            await _respond(writer, 404, b"not found\n")
            return
        _, namespace, pod, container = parts
        previous = query.get("previous", ["false"])[0] == "true"
        found = self.find_log(namespace, pod, container, previous)
        if found is None or not found.exists():
            await _respond(writer, 404, f"no logs for {namespace}/{pod}/{container}\n".encode())
            return
        tail = int(query["tailLines"][0]) if "tailLines" in query else None
        data = found.read_bytes()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        writer.write(_tail(data, tail))
        await writer.drain()
        if query.get("follow", ["false"])[0] != "true" or previous:
            return
        offset = len(data)
        while self.alive(namespace, pod):
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
            with found.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            if chunk:
                offset += len(chunk)
                writer.write(chunk)
                await writer.drain()


async def _respond(writer: asyncio.StreamWriter, code: int, body: bytes) -> None:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(code, "Error")
    head = f"HTTP/1.1 {code} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
