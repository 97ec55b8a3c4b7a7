"""Fixtures of localcluster's node tests; the session `localcluster`, `kube` and
`kube_sync` fixtures come from the localcluster.testing pytest plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lightkube import Client, KubeConfig

from localcluster.cluster import LocalCluster
from localcluster.config import StateDir
from localcluster.node.lifecycle import plan_file


@pytest.fixture(scope="module")
def state(localcluster: LocalCluster) -> StateDir:
    """The session cluster's state; skips the test when it runs no node agents."""
    if not localcluster.kubeconfig.exists() or not plan_file(localcluster.state).exists():
        pytest.skip(f"no localcluster with node agents at {localcluster.state.root}")
    return localcluster.state


@pytest.fixture(scope="module")
def api(state: StateDir) -> Iterator[Client]:
    client = Client(KubeConfig.from_file(state.kubeconfig), field_manager="node-e2e")
    yield client
    client.close()
