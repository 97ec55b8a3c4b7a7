"""Fixtures: real etcd clusters (1 and 3 members) as local processes on 127.0.0.1.

Binaries: see etcd_procs.binary_sets(); each test runs once per etcd version found.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from etcd_procs import EtcdBinarySet, LocalEtcdCluster, binary_sets

from etcd_operator.etcd import EtcdClient
from harness.s3server import S3Server

# Looked up once per session (ensure_binaries may build); a str says why there are none.
_binary_sets = functools.cache(binary_sets)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "etcd_bins" not in metafunc.fixturenames:
        return
    sets = _binary_sets()
    if isinstance(sets, str):
        metafunc.parametrize("etcd_bins", [pytest.param(None, id="no-etcd")], scope="session")
    else:
        metafunc.parametrize("etcd_bins", sets, ids=[b.version for b in sets], scope="session")


@pytest.fixture(scope="session")
def etcd_bins_checked(etcd_bins: EtcdBinarySet | None) -> EtcdBinarySet:
    if etcd_bins is None:
        pytest.skip(str(_binary_sets()))
    return etcd_bins


@pytest.fixture
def etcd_tmp() -> Iterator[Path]:
    # Short paths under /tmp: unix socket and data dir names stay small; removed after.
    d = Path(tempfile.mkdtemp(prefix="etcd-it-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


async def _cluster(bins: EtcdBinarySet, root: Path, size: int) -> AsyncIterator[LocalEtcdCluster]:
    cluster = LocalEtcdCluster(bins, root)
    cluster.start_initial(size)
    try:
        async with EtcdClient(cluster.config()) as client:
            await cluster.wait_healthy(client)
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture
async def etcd1(
    etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> AsyncIterator[LocalEtcdCluster]:
    """A healthy 1-member cluster."""
    async for c in _cluster(etcd_bins_checked, etcd_tmp, 1):
        yield c


@pytest.fixture
async def etcd3(
    etcd_bins_checked: EtcdBinarySet, etcd_tmp: Path
) -> AsyncIterator[LocalEtcdCluster]:
    """A healthy 3-member cluster."""
    async for c in _cluster(etcd_bins_checked, etcd_tmp, 3):
        yield c


@pytest.fixture
async def client3(etcd3: LocalEtcdCluster) -> AsyncIterator[EtcdClient]:
    async with EtcdClient(etcd3.config()) as client:
        yield client


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real SeaweedFS S3 server on 127.0.0.1 (no localcluster needed)."""
    root = Path(tempfile.mkdtemp(prefix="s3-it-"))
    server = S3Server(root)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
