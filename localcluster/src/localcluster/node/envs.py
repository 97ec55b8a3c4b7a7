"""Container environment: env, envFrom, downward API fields and $(VAR) expansion."""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from localcluster import config

Obj = dict[str, Any]
# (kind "Secret" | "ConfigMap", namespace, name) -> decoded data, or None if missing.
DataLookup = Callable[[str, str, str], Awaitable[dict[str, bytes] | None]]


class ConfigError(Exception):
    """The pod refers to something that does not exist (CreateContainerConfigError)."""


@dataclass(frozen=True)
class PodContext:
    pod: Obj
    pod_ip: str
    host_ip: str

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def hostname(self) -> str:
        spec = self.pod["spec"]
        return str(spec.get("hostname") or self.pod["metadata"]["name"])


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(ctx: PodContext, path: str) -> str:
    meta, spec = ctx.pod["metadata"], ctx.pod["spec"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": ctx.pod_ip,
        "status.podIPs": ctx.pod_ip,
        "status.hostIP": ctx.host_ip,
        "status.hostIPs": ctx.host_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef {path}")


def decode_data(obj: Obj) -> dict[str, bytes]:
    """Secret/ConfigMap contents as bytes (Secret data is base64; stringData never persists)."""
    out: dict[str, bytes] = {}
    if obj.get("kind") == "Secret":
        out.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    else:
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        out.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
    return out


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: unknown references stay as written, $$ escapes."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


async def build_env(
    ctx: PodContext, container: Obj, lookup: DataLookup, base: Mapping[str, str]
) -> dict[str, str]:
    env = dict(base)
    env.setdefault("HOSTNAME", ctx.hostname)
    # Without the `kubernetes` Service's ClusterIP, the API server via the host (gateway).
    env.setdefault("KUBERNETES_SERVICE_HOST", config.GATEWAY_IP)
    env.setdefault("KUBERNETES_SERVICE_PORT", str(config.APISERVER_PORT))
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if source.get("configMapRef")
            else ("Secret", source.get("secretRef") or {})
        )
        data = await lookup(kind, ctx.namespace, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f"{kind.lower()} {ref.get('name')!r} not found")
        prefix = source.get("prefix") or ""
        env.update({prefix + k: v.decode(errors="replace") for k, v in data.items()})
    for var in container.get("env") or []:
        value = await _env_value(ctx, var, lookup, env)
        if value is not None:
            env[var["name"]] = value
    return env


async def _env_value(
    ctx: PodContext, var: Obj, lookup: DataLookup, env: Mapping[str, str]
) -> str | None:
    if "valueFrom" not in var or var["valueFrom"] is None:
        return expand(var.get("value") or "", env)
    source = var["valueFrom"]
    if source.get("fieldRef"):
        return field_value(ctx, source["fieldRef"]["fieldPath"])
    if source.get("resourceFieldRef"):
        return "0"
    for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
        ref = source.get(key)
        if not ref:
            continue
        data = await lookup(kind, ctx.namespace, ref.get("name", ""))
        if data is None or ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise ConfigError(f"{kind.lower()} {ref.get('name')!r} key {ref['key']!r} not found")
        return data[ref["key"]].decode(errors="replace")
    raise ConfigError(f"unsupported env source for {var['name']}")
