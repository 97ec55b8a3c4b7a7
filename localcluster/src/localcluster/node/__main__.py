"""`python -m localcluster.node --name lc-node-0 --state DIR`: one node agent."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from localcluster import locks
from localcluster.config import StateDir
from localcluster.node.agent import Agent
from localcluster.paths import NodePaths


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localcluster.node")
    parser.add_argument("--name", required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument(
        "--etcd", action="append", default=[], metavar="VERSION=BINDIR",
        help="directory holding etcd, etcdctl and etcdutl of one version",
    )  # fmt: skip
    parser.add_argument("--backoff-base", type=float, default=10.0)
    parser.add_argument("--backoff-cap", type=float, default=300.0)
    parser.add_argument("--cpu", default="16")
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--kubelet-port", type=int, default=10250)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level, format=f"%(asctime)s {args.name} %(levelname)s %(name)s %(message)s"
    )
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    etcd_dirs = {}
    for item in args.etcd:
        version, _, path = item.partition("=")
        etcd_dirs[version] = Path(path)
    state = StateDir(args.state.resolve())
    # Files the agent makes for pods (volumes, hosts files) must be readable by their
    # unprivileged users whatever umask started the agent, as with a kubelet.
    os.umask(0o022)
    # One agent per node: a second one (e.g. from overlapping starts) steps aside.
    lock = locks.hold(NodePaths(state, args.name).agent_lock, wait=10)
    if lock is None:
        logging.error("another agent already runs node %s; exiting", args.name)
        sys.exit(75)
    agent = Agent(
        state,
        name=args.name,
        etcd_dirs=etcd_dirs,
        backoff_base=args.backoff_base,
        backoff_cap=args.backoff_cap,
        cpu=args.cpu,
        max_pods=args.max_pods,
        kubelet_port=args.kubelet_port,
    )
    asyncio.run(agent.run())


if __name__ == "__main__":
    main()
