"""Fixtures for operator end-to-end tests: CRDs installed, the operator running, and a
fresh namespace per test."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from lightkube import AsyncClient

from harness.clusters import scratch_namespace
from harness.operator_process import OperatorProcess, install_crds
from harness.s3server import S3Server
from localcluster.cluster import LocalCluster

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


@pytest.fixture(scope="session")
def crds(localcluster: LocalCluster) -> None:
    install_crds(localcluster.kubeconfig)


@pytest.fixture(scope="session")
def operator_metrics_url() -> str:
    """Where the session's operator serves its Prometheus metrics."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return f"http://127.0.0.1:{port}/metrics"


@pytest.fixture(scope="session")
def operator(
    localcluster: LocalCluster, crds: None, operator_metrics_url: str
) -> Iterator[OperatorProcess]:
    port = operator_metrics_url.rsplit(":", 1)[1].removesuffix("/metrics")
    process = OperatorProcess(localcluster.state, extra_args=("--metrics-port", port))
    process.start()
    yield process
    process.stop()


@pytest_asyncio.fixture
async def namespace(kube: AsyncClient, operator: OperatorProcess) -> AsyncIterator[str]:
    async with scratch_namespace(kube, "e2e", RESTRICTED) as name:
        yield name
        operator.start()  # a test may have stopped it: it must release the finalizers


@pytest.fixture(scope="session")
def s3_server(localcluster: LocalCluster) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) on the host, reached by pods at the bridge's gateway;
    registered with localcluster, so `localcluster down` stops it too."""
    server = S3Server(localcluster.state.root / "s3", state=localcluster.state)
    server.start()
    yield server
    server.stop()
