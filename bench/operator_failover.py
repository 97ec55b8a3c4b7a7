"""Failover of a leader-elected operator: the time from killing the leader (SIGKILL, so it
releases nothing) to the new leader's first applied step.

Two replicas with `--leader-elect` (the shipped timing: lease 15 s, renew deadline 10 s,
retry 2 s; override with FAILOVER_TIMING="lease,renew,retry") watch one namespace; a
one-member cluster is made Ready; the leader is killed and the cluster is scaled to two at
once, so the new leader has a step to apply. Prints, for each of ROUNDS kills:

* kill -> standby holds the Lease (its /leaderz answers 200);
* kill -> its first applied step (its log's first `applying` line after the kill).

Asserts nothing about speed. Needs the binaries built (`make localcluster`); brings
localcluster up if needed (and down again if it started it); stops any other operator
watching the namespace by using a fresh one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.error
import urllib.request

from lightkube import AsyncClient, KubeConfig

from harness.chart import NAMESPACE as OPERATOR_NAMESPACE
from harness.clusters import create_ready_cluster, patch_spec, scratch_namespace, wait_ready
from harness.operator_process import OperatorProcess, install_crds
from localcluster import cluster

ROUNDS = 2
APPLYING = "] applying "


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _leads(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/leaderz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _replica(lc: cluster.LocalCluster, name: str, ns: str) -> tuple[OperatorProcess, int]:
    timing = os.environ.get("FAILOVER_TIMING", "15,10,2").split(",")
    health = _port()
    args = [
        "--leader-elect",
        f"--lease-name=bench-{ns}",
        f"--lease-namespace={OPERATOR_NAMESPACE}",
        f"--lease-duration={timing[0]}",
        f"--renew-deadline={timing[1]}",
        f"--retry-period={timing[2]}",
        f"--health-port={health}",
    ]
    process = OperatorProcess(
        lc.state,
        name,
        namespaces=(ns,),
        extra_args=args,
        extra_env={"ETCD_OPERATOR_IDENTITY": name},
    )
    return process, health


async def main() -> None:
    before = cluster.status()
    started = not before.healthy
    lc = cluster.up(nodes=3)
    install_crds(lc.kubeconfig)
    kube = AsyncClient(KubeConfig.from_file(lc.kubeconfig), field_manager="bench")
    replicas: dict[str, tuple[OperatorProcess, int]] = {}
    try:
        async with scratch_namespace(kube, "failover") as ns:
            for name in ("failover-a", "failover-b"):
                replicas[name] = _replica(lc, name, ns)
                replicas[name][0].start()
            await create_ready_cluster(kube, ns, "fo", {"replicas": 1})
            size = 1
            for round_ in range(ROUNDS):
                [leader] = [n for n, (_, port) in replicas.items() if _leads(port)]
                [standby] = [n for n in replicas if n != leader]
                process, port = replicas[standby]
                offset = process.log_path.stat().st_size
                replicas[leader][0].kill()
                killed = time.monotonic()
                size = 2 if size == 1 else 1
                await patch_spec(kube, ns, "fo", {"replicas": size})
                held = applied = None
                while applied is None and time.monotonic() - killed < 180:
                    if held is None and _leads(port):
                        held = time.monotonic() - killed
                    with process.log_path.open("rb") as f:
                        f.seek(offset)
                        if APPLYING.encode() in f.read():
                            applied = time.monotonic() - killed
                    await asyncio.sleep(0.1)
                print(
                    f"round {round_ + 1}: kill -> new leader holds the Lease: {held:.1f}s;"
                    f" kill -> its first applied step: {applied:.1f}s"
                    if held is not None and applied is not None
                    else f"round {round_ + 1}: no takeover within 180s"
                )
                await wait_ready(kube, ns, "fo", size, timeout=240)
                replicas[leader][0].start()  # back as the standby
            for process, _ in replicas.values():
                process.start()  # a live operator releases the finalizers on exit
    finally:
        for process, _ in replicas.values():
            process.stop()
        await kube.close()
        if started and os.environ.get("LOCALCLUSTER_KEEP") != "1":
            cluster.down(lc.state)


if __name__ == "__main__":
    asyncio.run(main())
