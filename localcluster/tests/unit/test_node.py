"""Pieces of the node agent that need no cluster: env expansion, IPAM, the shell prelude."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localcluster import locks
from localcluster.config import StateDir
from localcluster.node import container, ipam
from localcluster.node.envs import ConfigError, PodContext, build_env, expand

POD: dict[str, Any] = {
    "metadata": {"name": "etcd-0", "namespace": "ns1", "uid": "u-1", "labels": {"a": "b"}},
    "spec": {"nodeName": "lc-node-0", "hostname": "etcd-0"},
}


def test_expand_follows_kubernetes_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$(MISSING) $$(A) $(A", env) == "$(MISSING) $(A) $(A"


async def lookup(kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
    if (kind, name) == ("Secret", "s"):
        return {"password": base64.b64decode(base64.b64encode(b"hunter2"))}
    if (kind, name) == ("ConfigMap", "c"):
        return {"MODE": b"fast"}
    return None


def test_build_env_resolves_sources_in_order() -> None:
    ctx = PodContext(POD, "10.213.0.10", "10.213.0.1")
    spec = {
        "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['a']"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
            {"name": "URL", "value": "http://$(IP):2379/$(CM_MODE)"},
        ],
    }
    env = asyncio.run(build_env(ctx, spec, lookup, {"PATH": "/bin"}))
    assert env["POD"] == "etcd-0" and env["LABEL"] == "b" and env["PW"] == "hunter2"
    assert env["URL"] == "http://10.213.0.10:2379/fast"
    assert env["HOSTNAME"] == "etcd-0"


def test_missing_secret_is_a_config_error() -> None:
    ctx = PodContext(POD, "", "")
    spec = {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(ConfigError):
        asyncio.run(build_env(ctx, spec, lookup, {}))


def test_ipam_keeps_addresses_per_pod(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    a = ipam.allocate(state, "a")
    b = ipam.allocate(state, "b")
    assert a != b and ipam.allocate(state, "a") == a
    ipam.release(state, "a")
    assert ipam.allocations(state) == {b: "b"}
    # A freed address is not handed out again right away.
    assert ipam.allocate(state, "c") not in (a, b)


def test_prelude_bind_mounts_and_execs(tmp_path: Path) -> None:
    text = container.prelude([(tmp_path, "/var/lib/etcd", True)], "etcd-0", "/work dir")
    assert f"--bind {tmp_path} /var/lib/etcd" in text
    assert "remount,bind,ro /var/lib/etcd" in text
    assert "cd '/work dir'" in text
    assert text.endswith('exec "$@"')


def test_a_lock_has_one_holder_whose_pid_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    assert locks.holder(path) is None
    held = locks.hold(path, wait=0)
    assert held is not None
    # Another process cannot take it, and sees who has it.
    probe = (
        "import sys; from pathlib import Path; from localcluster import locks; "
        f"p = Path({str(path)!r}); "
        "taken = locks.hold(p, wait=0) is not None; "
        "sys.exit(1 if taken or locks.holder(p) != int(sys.argv[1]) else 0)"
    )
    other = subprocess.run([sys.executable, "-c", probe, str(os.getpid())], check=False)
    assert other.returncode == 0
    held.close()
    assert locks.holder(path) is None
