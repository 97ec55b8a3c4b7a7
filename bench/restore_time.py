"""Restore time: `etcdutl snapshot restore` alone against the operator's restore path.

One real etcd member on 127.0.0.1 is filled with `--mib` MiB (default 256; 1024 for the
issue's ~1 GiB, which takes minutes to fill on a loaded machine) of 1 MiB values and
snapshotted with `etcdctl snapshot save`. Then, on local disk, each step run as the pods run
it (the same commands, as processes, without Kubernetes):

* the reference: `etcdutl snapshot restore` of the file into a data directory;
* EtcdRestore's verification pod: `etcd-operator snapshot-fetch` (checked copy: sha256 and
  etcd's hash trailer), `etcdutl snapshot restore` into a scratch directory, `etcdutl
  snapshot status`;
* an initial member's restore steps: `snapshot-fetch`, `etcdutl snapshot restore` into the
  staging directory with the member's flags, `etcd-operator restore-commit`.

Prints each time and the ratio of the operator's path (verification + one member's steps;
members restore in parallel, each on its own node) to `etcdutl` alone. Fetches read from
local disk here: from S3 or a claim on another machine the network adds its own time.
Asserts nothing; kept out of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backup_throughput import MIB, _fill, _start_etcd

from localcluster.build import ETCD_BUILDS, etcd_binaries_for

OPERATOR = [sys.executable, "-m", "etcd_operator"]
PEER = "http://127.0.0.1:2380"
MEMBER_FLAGS = [
    "--name=m0",
    f"--initial-cluster=m0={PEER}",
    "--initial-cluster-token=bench-restore",
    f"--initial-advertise-peer-urls={PEER}",
]


def _timed(*commands: list[str]) -> float:
    start = time.monotonic()
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=3600)
    return time.monotonic() - start


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="data to fill etcd with, MiB")
    args = parser.parse_args()
    version = ETCD_BUILDS[-1].version
    binaries = etcd_binaries_for(version)
    if binaries is None:
        sys.exit(f"no etcd {version} binaries: run `make localcluster` first")
    bin_dir = Path(binaries.etcd).parent
    etcdutl = str(bin_dir / "etcdutl")
    root = Path(tempfile.mkdtemp(prefix="bench-restore-"))
    etcd, url = _start_etcd(bin_dir, root / "etcd")
    snapshot = root / "snap.db"
    try:
        print(f"filling etcd {version} with {args.mib} MiB of 1 MiB values ...", flush=True)
        asyncio.run(_fill(url, args.mib))
        subprocess.run(
            [str(bin_dir / "etcdctl"), f"--endpoints={url}", "snapshot", "save", str(snapshot)],
            check=True, capture_output=True, timeout=3600,
        )  # fmt: skip
    finally:
        etcd.terminate()
        etcd.wait(timeout=30)
    try:
        size = snapshot.stat().st_size
        sha = _sha256(snapshot)
        alone = _timed(
            [etcdutl, "snapshot", "restore", str(snapshot), *MEMBER_FLAGS,
             f"--data-dir={root / 'alone'}"],
        )  # fmt: skip
        shutil.rmtree(root / "alone")
        fetch = [*OPERATOR, "snapshot-fetch", f"--source={snapshot}", f"--sha256={sha}"]
        (root / "verify").mkdir()
        verify = _timed(
            [*fetch, f"--target={root / 'verify' / 'snapshot.db'}"],
            [etcdutl, "snapshot", "restore", str(root / "verify" / "snapshot.db"),
             f"--data-dir={root / 'verify' / 'check'}"],
            [etcdutl, "snapshot", "status", str(root / "verify" / "snapshot.db"),
             "--write-out=json"],
        )  # fmt: skip
        shutil.rmtree(root / "verify")
        (root / "member").mkdir()
        staging = root / "member" / "data" / "restore-staging"
        staging.parent.mkdir()
        member = _timed(
            [*fetch, f"--target={root / 'member' / 'snapshot.db'}",
             f"--clear-staging={staging}"],
            [etcdutl, "snapshot", "restore", str(root / "member" / "snapshot.db"),
             *MEMBER_FLAGS, f"--data-dir={staging}"],
            [*OPERATOR, "restore-commit", f"--staging={staging}",
             f"--data-dir={root / 'member' / 'data' / 'default.etcd'}"],
        )  # fmt: skip
        ours = verify + member
        startup = _timed([*OPERATOR, "version"])  # per step in the operator's image
        print(f"snapshot {size / MIB:.0f} MiB (etcd {version})")
        print(f"etcdutl snapshot restore alone        : {alone:7.2f}s")
        print(f"verification (fetch, restore, status) : {verify:7.2f}s")
        print(f"member steps (fetch, restore, commit) : {member:7.2f}s")
        print(f"operator's path (verification + member): {ours:6.2f}s  ratio {ours / alone:4.2f}x")
        print(f"  of which 4 starts of the operator's CLI: {4 * startup:5.2f}s (fixed, any size)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
