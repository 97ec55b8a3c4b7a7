"""One probe attempt: exec, httpGet or tcpSocket, as a kubelet runs them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

Obj = dict[str, Any]
# Runs a command in the container: (argv, timeout) -> (exit code, output).
ExecFn = Callable[[list[str], float], Awaitable[tuple[int, str]]]


def resolve_port(port: int | str, container: Obj) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found in container")


async def probe_once(probe: Obj, container: Obj, pod_ip: str, run: ExecFn) -> tuple[bool, str]:
    """(success, message) of one attempt, bounded by timeoutSeconds."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if probe.get("exec"):
            code, out = await run(list(probe["exec"].get("command") or []), timeout)
            return code == 0, f"exec exited {code}: {out.strip()}"
        if probe.get("httpGet"):
            return await asyncio.wait_for(_http(probe["httpGet"], container, pod_ip), timeout)
        if probe.get("tcpSocket"):
            sock = probe["tcpSocket"]
            port = resolve_port(sock["port"], container)
            await asyncio.wait_for(_connect(sock.get("host") or pod_ip, port), timeout)
            return True, "connected"
        if probe.get("grpc"):
            # No gRPC health client here: a TCP connect is the closest honest check.
            port = int(probe["grpc"]["port"])
            await asyncio.wait_for(_connect(pod_ip, port), timeout)
            return True, "connected (grpc probe checked as tcp)"
    except TimeoutError:
        return False, f"timeout after {timeout}s"
    except (OSError, ValueError) as e:
        return False, str(e) or type(e).__name__
    return False, "probe has no handler"


async def _connect(host: str, port: int) -> None:
    _, writer = await asyncio.open_connection(host, port)
    writer.close()


async def _http(get: Obj, container: Obj, pod_ip: str) -> tuple[bool, str]:
    host = get.get("host") or pod_ip
    port = resolve_port(get["port"], container)
    tls: ssl.SSLContext | None = None
    if (get.get("scheme") or "HTTP").upper() == "HTTPS":
        # Like a kubelet: HTTPS probes do not verify the certificate.
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/localcluster"}
        headers.update({h["name"]: h["value"] for h in get.get("httpHeaders") or []})
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        path = get.get("path") or "/"
        writer.write(f"GET {path} HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = (await reader.readline()).decode(errors="replace").split()
    finally:
        writer.close()
    code = int(status_line[1]) if len(status_line) >= 2 and status_line[1].isdigit() else 0
    ok = 200 <= code < 400
    return ok, f"HTTP probe {'succeeded' if ok else 'failed'} with statuscode: {code}"
