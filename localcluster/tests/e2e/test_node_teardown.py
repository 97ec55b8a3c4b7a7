"""Node faults and lifecycle: heartbeats stop on demand; stopping agents leaves nothing behind."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from lightkube import Client
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Namespace, Node

from localcluster import faults, network
from localcluster.config import StateDir
from localcluster.node import restart_agents, stop_agents
from localcluster.node.heartbeat import RENEW_SECONDS
from localcluster.paths import all_nodes, find_pod
from localcluster.testing import pods as t

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def ns(api: Client) -> Iterator[str]:
    name = f"node-td-{uuid.uuid4().hex[:6]}"
    t.create_namespace(api, name)
    yield name
    api.delete(Namespace, name)


def renew_time(api: Client, node: str) -> object:
    lease = api.get(Lease, node, namespace="kube-node-lease")
    return lease.spec.renewTime if lease.spec else None


def test_nodes_are_ready_with_the_server_version(api: Client) -> None:
    nodes = [n.to_dict() for n in api.list(Node) if n.metadata and n.metadata.name]
    ours = [n for n in nodes if n["metadata"]["name"].startswith("lc-node-")]
    assert ours
    for node in ours:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True"
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")
        assert int(node["status"]["allocatable"]["pods"]) > 0


def test_stopped_heartbeats_freeze_the_lease_until_resumed(state: StateDir, api: Client) -> None:
    node = "lc-node-0"
    faults.stop_heartbeats(state, node)
    try:
        time.sleep(1)  # a renewal already in flight may still land
        before = renew_time(api, node)
        # Asserting an absence needs a wait: longer than one renewal period.
        time.sleep(RENEW_SECONDS + 1)
        assert renew_time(api, node) == before
    finally:
        faults.resume_heartbeats(state, node)
    # At once: within a second of its loop, plus the request (slower on a loaded machine).
    t.wait_for(lambda: renew_time(api, node) != before, timeout=15, what="lease renewed")


def test_stopping_agents_leaves_no_process_netns_or_veth_and_they_come_back(
    state: StateDir, api: Client, ns: str
) -> None:
    t.create(api, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle", "namespace": ns},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [
            {"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    })  # fmt: skip
    t.wait_for(lambda: t.is_ready(api, ns, "idle"), what="idle ready")
    pid = faults.container_pid(state, ns, "idle", "main")
    _, record = find_pod(state, ns, "idle")
    stop_agents(state)
    try:
        assert not os.path.exists(f"/proc/{pid}")
        assert not network.list_pod_netns()
        assert not network.link_exists(record.veth)
        assert not [r for node in all_nodes(state) for r in node.records()]
        assert not list(state.pids.glob("agent-*.pid"))
    finally:
        restart_agents(state)
    # The pod still exists in the API, so the restarted agent runs it again.
    t.wait_for(lambda: t.is_ready(api, ns, "idle"), timeout=60, what="idle ready again")
