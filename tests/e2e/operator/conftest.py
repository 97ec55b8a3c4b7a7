"""Fixtures for operator end-to-end tests: CRDs installed, the operator running, and a
fresh namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from harness.clusters import delete_clusters
from harness.operator_process import OperatorProcess, install_crds
from localcluster.cluster import LocalCluster


@pytest.fixture(scope="session")
def crds(localcluster: LocalCluster) -> None:
    install_crds(localcluster.kubeconfig)


@pytest.fixture(scope="session")
def operator(localcluster: LocalCluster, crds: None) -> Iterator[OperatorProcess]:
    process = OperatorProcess(localcluster.state)
    process.start()
    yield process
    process.stop()


@pytest_asyncio.fixture
async def namespace(kube: AsyncClient, operator: OperatorProcess) -> AsyncIterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    await kube.create(
        Namespace(
            metadata=ObjectMeta(
                name=name, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            )
        )
    )
    yield name
    # Clusters first, while the operator runs to release its finalizer; then the rest.
    operator.start()
    await delete_clusters(kube, name)
    await kube.delete(Namespace, name)
