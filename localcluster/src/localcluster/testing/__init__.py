"""The pytest plugin of localcluster: one localcluster per test session.

Registered through the ``pytest11`` entry point, so every test run in a virtualenv
with localcluster installed has the fixtures ``localcluster`` (started on first use),
``kube_sync`` and ``kube`` (API clients). An already running, healthy cluster (e.g.
from `python -m localcluster up`) is reused and left running; a cluster this session
started is torn down at the end unless LOCALCLUSTER_KEEP=1. LOCALCLUSTER_NODES sets
the node count (1). Helpers for tests of the node itself: ``localcluster.testing.pods``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from lightkube import AsyncClient, Client, KubeConfig

from localcluster import cluster
from localcluster.build import ensure_binaries
from localcluster.cluster import LocalCluster
from localcluster.config import StateDir


def _healthy(state: StateDir, want_nodes: int) -> bool:
    status = cluster.status(state)
    return status.healthy and sum(status.nodes.values()) >= want_nodes


@pytest.fixture(scope="session")
def localcluster() -> Iterator[LocalCluster]:
    state = StateDir.default()
    nodes = int(os.environ.get("LOCALCLUSTER_NODES", "1"))
    binaries = ensure_binaries(progress=True)
    started = not _healthy(state, nodes)
    running = cluster.up(state, nodes=nodes, binaries=binaries) if started else None
    yield running or LocalCluster(state=state, binaries=binaries)
    if started and os.environ.get("LOCALCLUSTER_KEEP") != "1":
        cluster.down(state)


@pytest.fixture(scope="session")
def kube_sync(localcluster: LocalCluster) -> Iterator[Client]:
    client = Client(KubeConfig.from_file(localcluster.kubeconfig), field_manager="e2e")
    yield client
    client.close()


@pytest_asyncio.fixture(scope="session")
async def kube(localcluster: LocalCluster) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(localcluster.kubeconfig), field_manager="e2e")
    yield client
    await client.close()
