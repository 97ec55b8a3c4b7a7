"""Shared set-up of the EtcdCluster benchmarks: localcluster, CRDs, an operator, a namespace.

Not a benchmark itself (`make bench` skips files starting with `_`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lightkube import AsyncClient, KubeConfig

from harness.clusters import scratch_namespace
from harness.operator_process import OperatorProcess, install_crds
from localcluster import cluster


@asynccontextmanager
async def bench_namespace(nodes: int = 3) -> AsyncIterator[tuple[AsyncClient, str]]:
    """A fresh namespace watched by a benchmark operator; everything removed afterwards,
    localcluster too when this benchmark started it (it is one per machine)."""
    before = cluster.status()
    started = not (before.healthy and sum(before.nodes.values()) >= nodes)
    lc = cluster.up(nodes=nodes)
    install_crds(lc.kubeconfig)
    operator = OperatorProcess(lc.state, name="bench-operator")
    operator.start()
    kube = AsyncClient(KubeConfig.from_file(lc.kubeconfig), field_manager="bench")
    try:
        async with scratch_namespace(kube, "bench") as ns:
            yield kube, ns
    finally:
        await kube.close()
        operator.stop()
        if started and os.environ.get("LOCALCLUSTER_KEEP") != "1":
            cluster.down(lc.state)
