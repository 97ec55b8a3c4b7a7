"""The node enforces NetworkPolicy ingress rules: real pods, real connections from their
network namespaces (a dropped connection times out; a closed port that policy lets through
is refused)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from lightkube import Client
from lightkube.codecs import from_dict
from lightkube.resources.core_v1 import Namespace, Service
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.types import PatchType

from localcluster.config import StateDir
from localcluster.testing import pods as t

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
SHELL = "busybox:1.36"
SERVE = """
import socket, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.sendall(b"hi"); c.close()
for port in (8001, 8002):
    threading.Thread(target=serve, args=(port,)).start()
"""


@pytest.fixture(scope="module")
def namespaces(api: Client) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:6]
    home, away = f"np-home-{suffix}", f"np-away-{suffix}"
    for name in (home, away):
        t.create_namespace(api, name)
    yield home, away
    for name in (home, away):
        api.delete(Namespace, name)


def _sleeper(name: str, app: str) -> dict[str, Any]:
    body = t.pod_body(name, SHELL, ["sleep", "3600"])
    body["metadata"]["labels"] = {"app": app}
    return body


def _ip(api: Client, ns: str, name: str) -> str:
    return str(t.wait_for(lambda: t.pod_status(api, ns, name).get("podIP"), what=f"{name} ip"))


def _outcome(
    state: StateDir, ns: str, pod: str, ip: str, port: int, want: str, timeout: float = 10
) -> str:
    """Wait until connecting gives `want` (policies apply within a sync); the last outcome."""
    return t.wait_for(
        lambda: (got := t.connect_from(state, ns, pod, ip, port)) == want and got,
        timeout=timeout,
        interval=0.1,
        what=f"{ns}/{pod} -> {ip}:{port} {want}",
    )


def test_ingress_rules_allow_selected_sources_and_ports_only(
    state: StateDir, api: Client, namespaces: tuple[str, str]
) -> None:
    home, away = namespaces
    api.patch(Namespace, away, {"metadata": {"labels": {"team": "red"}}})
    server = t.pod_body("server", SHELL, ["python3", "-c", SERVE],
                        container={"ports": [{"name": "web", "containerPort": 8001}]})  # fmt: skip
    server["metadata"]["labels"] = {"app": "server"}
    t.create_in(api, home, server, _sleeper("client", "client"), _sleeper("other", "other"))
    t.create_in(api, away, _sleeper("client", "client"))
    for ns, name in ((home, "server"), (home, "client"), (home, "other"), (away, "client")):
        t.wait_for(lambda ns=ns, name=name: t.is_ready(api, ns, name), what=f"{ns}/{name}")
    ip = _ip(api, home, "server")
    # No policy selects the server yet: open to everyone.
    assert _outcome(state, away, "client", ip, 8002, "connected") == "connected"

    policy = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "server", "namespace": home},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                              "ports": [{"port": "web"}, {"port": 9000}]}]},
    }  # fmt: skip
    api.create(from_dict(policy))
    assert _outcome(state, home, "other", ip, 8001, "timeout") == "timeout"
    assert t.connect_from(state, home, "client", ip, 8001) == "connected"
    assert t.connect_from(state, home, "client", ip, 8002) == "timeout", "port not allowed"
    assert t.connect_from(state, home, "client", ip, 9000) == "refused", "allowed, none listens"
    assert t.connect_from(state, away, "client", ip, 8001) == "timeout", "other namespace"

    # A namespaceSelector opens the port to the pods of the labelled namespace.
    peers = policy["spec"]["ingress"][0]["from"]
    peers.append({"namespaceSelector": {"matchLabels": {"team": "red"}}})
    api.patch(NetworkPolicy, "server", {"spec": policy["spec"]}, namespace=home,
              patch_type=PatchType.MERGE)  # fmt: skip
    assert _outcome(state, away, "client", ip, 8001, "connected") == "connected"
    assert t.connect_from(state, away, "client", ip, 8002) == "timeout"
    assert t.connect_from(state, home, "other", ip, 8001) == "timeout"

    # Through a Service's ClusterIP (the proxy on the host forwards) the same rules hold.
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "server"},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8001}]},
    }  # fmt: skip
    t.create_in(api, home, service)
    cluster_ip = str(api.get(Service, "server", namespace=home).spec.clusterIP)  # type: ignore[union-attr]
    t.wait_for(
        lambda: t.connect_from(state, away, "client", cluster_ip, 80, read=True) == "replied",
        what="the admitted client through the service",
    )
    assert t.connect_from(state, home, "other", cluster_ip, 80, read=True) == "closed"

    # The node itself (kubelet probes, processes on the host) is let in.
    assert t.connect_from_host(ip, 8002) == "connected"

    # A new client is admitted as soon as it has an address.
    t.create_in(api, home, _sleeper("late", "client"))
    t.wait_for(lambda: t.is_ready(api, home, "late"), what="late client")
    started = time.monotonic()
    _outcome(state, home, "late", ip, 8001, "connected", timeout=5)
    print(f"a new client reached the server {time.monotonic() - started:.2f}s after it was ready")

    # Removing the policy opens the pod again.
    api.delete(NetworkPolicy, "server", namespace=home)
    assert _outcome(state, home, "other", ip, 8002, "connected") == "connected"


def test_a_pod_created_under_a_deny_all_policy_is_isolated(
    state: StateDir, api: Client, namespaces: tuple[str, str]
) -> None:
    home, away = namespaces
    deny = {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": home},
        "spec": {"podSelector": {"matchLabels": {"app": "locked"}}},
    }  # fmt: skip
    api.create(from_dict(deny))
    locked = t.pod_body("locked", SHELL, ["python3", "-c", SERVE])
    locked["metadata"]["labels"] = {"app": "locked"}
    t.create_in(api, home, locked)
    ip = _ip(api, home, "locked")
    t.wait_for(lambda: t.is_ready(api, home, "locked"), what="locked ready")
    t.create_in(api, away, _sleeper("probe", "probe"))
    t.wait_for(lambda: t.is_ready(api, away, "probe"), what="probe ready")
    assert t.connect_from(state, away, "probe", ip, 8001) == "timeout"
    api.delete(NetworkPolicy, "deny", namespace=home)
    assert _outcome(state, away, "probe", ip, 8001, "connected") == "connected"
