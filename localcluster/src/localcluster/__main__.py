"""`python -m localcluster build | helm | up [--nodes N] | status | down`."""

from __future__ import annotations

import argparse
import sys

from localcluster import cluster, hosttools
from localcluster.build import ensure_binaries, ensure_helm
from localcluster.config import StateDir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or find cached) the binaries; install nft if missing")
    sub.add_parser("helm", help="build (or find cached) the pinned helm; prints its path")
    up = sub.add_parser("up", help="start the cluster (idempotent); prints the kubeconfig path")
    up.add_argument("--nodes", type=int, default=1, help="number of node agents (default 1)")
    sub.add_parser("status", help="show processes, API readiness and nodes; exit 1 if unhealthy")
    sub.add_parser("down", help="stop everything (idempotent)")
    args = parser.parse_args(argv)
    state = StateDir.default()

    if args.command == "build":
        binaries = ensure_binaries(progress=True)
        hosttools.ensure_nft()  # NetworkPolicy enforcement on the node
        print(binaries.kube_apiserver.parent)
        for etcd in binaries.etcd_versions.values():
            print(etcd.etcd.parent)
    elif args.command == "helm":
        print(ensure_helm(progress=True))
    elif args.command == "up":
        print(cluster.up(state, nodes=args.nodes).kubeconfig)
    elif args.command == "down":
        cluster.down(state)
    elif args.command == "status":
        status = cluster.status(state)
        for name, alive in status.processes.items():
            print(f"{name:<24} {'running' if alive else 'stopped'}")
        print(f"{'api':<24} {'ready' if status.api_ready else 'not ready'}")
        for name, ready in sorted(status.nodes.items()):
            print(f"node/{name:<19} {'Ready' if ready else 'NotReady'}")
        return 0 if status.healthy else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
