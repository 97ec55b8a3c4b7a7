"""Shared set-up of the EtcdCluster benchmarks: localcluster, CRDs, an operator, a namespace.

Not a benchmark itself (`make bench` skips files starting with `_`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from harness.clusters import delete_clusters
from harness.operator_process import OperatorProcess, install_crds
from localcluster import cluster


@asynccontextmanager
async def bench_namespace(nodes: int = 3) -> AsyncIterator[tuple[AsyncClient, str]]:
    """A fresh namespace watched by a benchmark operator; everything removed afterwards."""
    lc = cluster.up(nodes=nodes)
    install_crds(lc.kubeconfig)
    operator = OperatorProcess(lc.state, name="bench-operator")
    operator.start()
    kube = AsyncClient(KubeConfig.from_file(lc.kubeconfig), field_manager="bench")
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    await kube.create(Namespace(metadata=ObjectMeta(name=ns)))
    try:
        yield kube, ns
    finally:
        await delete_clusters(kube, ns)
        await kube.delete(Namespace, ns)
        await kube.close()
        operator.stop()
