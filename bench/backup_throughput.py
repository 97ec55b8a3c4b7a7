"""Backup throughput and memory: `etcd-operator backup` against `etcdctl snapshot save`.

One real etcd member on 127.0.0.1 is filled with ~1 GiB (BENCH_BACKUP_MIB, default 1024) of
1 MiB values; then, in the same run and against the same member, BENCH_ROUNDS times
(default 2) in turn:

* `etcdctl snapshot save` to local disk (the reference: it streams, fsyncs and renames);
* the backup Job's attempt (etcd_operator.backup.run, as `etcd-operator backup` runs it, in
  a fresh process) to a file on local disk, i.e. what a PVC destination does;
* the same attempt to S3 (a real SeaweedFS server on 127.0.0.1, multipart upload).

Prints each time, the backup/etcdctl throughput ratio (target >= 0.9x) and each process's
peak RSS (target for the backup: flat and under 150 MB whatever the size). Both sides'
times include their process start; the backup's start alone (imports) is printed apart, as
is what the S3 store takes in with no etcd at all (the same upload from memory): on a small
machine the store's own CPU bounds the S3 figure. No localcluster is needed; the etcd
binaries come from its cache (`make localcluster`). Asserts nothing; kept out of `make test`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from etcd_operator.backup import contract
from etcd_operator.backup.destination import to_env
from etcd_operator.etcd import EtcdClient, EtcdConfig
from etcd_operator.objectstore import (
    FileLocation,
    Location,
    Manifest,
    S3Credentials,
    S3Location,
    open_writer,
)
from harness.s3server import REGION, S3Server
from localcluster.build import ETCD_BUILDS, etcd_binaries_for

MIB = 1024 * 1024
SIZE_MIB = int(os.environ.get("BENCH_BACKUP_MIB", "1024"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))

# Runs one attempt in a fresh process and reports its result and peak RSS.
_ATTEMPT = """
import asyncio, json, sys
from pathlib import Path
from etcd_operator.backup import contract
from etcd_operator.backup.run import _flat_allocator, attempt
_flat_allocator()  # as main() does
env, mounts = json.loads(sys.argv[1]), contract.Mounts(**json.loads(sys.argv[2]))
result = asyncio.run(attempt(env, mounts))
hwm = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines()
           if l.startswith("VmHWM:"))
print(json.dumps({"outcome": result.outcome, "reason": result.reason, "size": result.size,
                  "message": result.message, "peak_rss_kib": hwm}))
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_etcd(bin_dir: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    client, peer = _port(), _port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        [
            str(bin_dir / "etcd"), "--name=bench", f"--data-dir={data}",
            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=bench=http://127.0.0.1:{peer}",
            "--quota-backend-bytes=8589934592", "--log-level=error",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, url


async def _fill(url: str, mib: int) -> int:
    blob = os.urandom(MIB)  # incompressible, one value reused
    config = EtcdConfig(endpoints=(url,), request_timeout=60.0)
    async with EtcdClient(config) as etcd:
        for _ in range(100):
            try:
                await etcd.put("/bench/ready", "1")
                break
            except Exception:
                await asyncio.sleep(0.2)
        for start in range(0, mib, 8):
            await asyncio.gather(
                *(etcd.put(f"/bench/{i:06d}", blob) for i in range(start, min(mib, start + 8)))
            )
        return (await etcd.status(url)).db_size


def _settle() -> None:
    """Write back every dirty page first: otherwise the first timed run (etcdctl) also pays
    for the fill's writeback (measured: 9 s instead of 6 s for 1 GiB), and each run for the
    one before it."""
    os.sync()


def _timed_run(args: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(args, check=True, capture_output=True, timeout=1800)
    return time.monotonic() - start


def _etcdctl_save(bin_dir: Path, url: str, path: Path) -> float:
    return _timed_run(
        [str(bin_dir / "etcdctl"), f"--endpoints={url}", "snapshot", "save", str(path)]
    )


def _backup(
    url: str, location: Location, mounts: contract.Mounts
) -> tuple[float, dict[str, object]]:
    env = {contract.ENV_ENDPOINTS: url, contract.ENV_DESTINATION: to_env(location)}
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", _ATTEMPT, json.dumps(env), json.dumps(mounts.__dict__)],
        check=True, capture_output=True, text=True, timeout=1800,
    ).stdout  # fmt: skip
    elapsed = time.monotonic() - start
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    if result["outcome"] != "Succeeded":
        raise RuntimeError(f"backup failed: {result}")
    return elapsed, result


def _process_start() -> float:
    """The backup process's fixed cost: interpreter start and the attempt's imports (best of 3)."""
    code = "import etcd_operator.backup.run"
    return min(_timed_run([sys.executable, "-c", code]) for _ in range(3))


async def _store_ceiling(location: S3Location, size: int) -> float:
    """The same upload from memory, no etcd: what the store takes in on this machine."""
    chunk = os.urandom(32 * 1024)
    start = time.monotonic()
    async with open_writer(location) as writer:
        for _ in range(size // len(chunk)):
            await writer.write(chunk)
        await writer.commit(Manifest("0" * 64, size - size % len(chunk), 1, "1", "x", "m", "", ""))
    return time.monotonic() - start


def main() -> None:
    version = ETCD_BUILDS[-1].version
    binaries = etcd_binaries_for(version)
    if binaries is None:
        sys.exit(f"no etcd {version} binaries: run `make localcluster` first")
    bin_dir = Path(binaries.etcd).parent
    root = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    etcd, url = _start_etcd(bin_dir, root / "etcd")
    s3 = S3Server(root / "s3")
    try:
        s3.start()
        s3.create_bucket("bench")
        print(f"filling etcd {version} with {SIZE_MIB} MiB of 1 MiB values ...", flush=True)
        t0 = time.monotonic()
        db_size = asyncio.run(_fill(url, SIZE_MIB))
        print(f"  db size {db_size / MIB:.0f} MiB, filled in {time.monotonic() - t0:.0f}s")
        secrets = root / "secrets"
        (secrets / "s3").mkdir(parents=True)
        (secrets / "s3" / contract.S3_ACCESS_KEY).write_text(s3.access_key)
        (secrets / "s3" / contract.S3_SECRET_KEY).write_text(s3.secret_key)
        mounts = contract.Mounts(
            tls=str(secrets / "none"), root=str(secrets / "none"), s3=str(secrets / "s3")
        )
        credentials = S3Credentials(s3.access_key, s3.secret_key)
        s3_location = S3Location(
            "bench", "b.db", s3.endpoint, REGION, force_path_style=True, credentials=credentials
        )
        print(f"backup process start + imports: {_process_start():.2f}s (in every backup time)")
        for n in range(1, ROUNDS + 1):
            _settle()
            reference = _etcdctl_save(bin_dir, url, root / "etcdctl.db")
            size = (root / "etcdctl.db").stat().st_size
            (root / "etcdctl.db").unlink()
            _settle()
            to_file, file_result = _backup(url, FileLocation(root / "backup" / "b.db"), mounts)
            shutil.rmtree(root / "backup")
            _settle()
            to_s3, s3_result = _backup(url, s3_location, mounts)
            _settle()
            ceiling = asyncio.run(_store_ceiling(replace(s3_location, key="ceiling.db"), size))
            rate = size / MIB
            print(f"round {n}: snapshot {rate:.0f} MiB")
            print(
                f"  {'etcdctl snapshot save (local disk)':34s}: {reference:6.2f}s  "
                f"{rate / reference:6.0f} MiB/s  ratio 1.00x"
            )
            for label, took, result in (
                ("backup -> file (PVC path)", to_file, file_result),
                ("backup -> S3 (SeaweedFS)", to_s3, s3_result),
            ):
                peak = int(result["peak_rss_kib"]) / 1024  # type: ignore[call-overload]
                print(
                    f"  {label:34s}: {took:6.2f}s  {rate / took:6.0f} MiB/s  "
                    f"ratio {reference / took:4.2f}x  peak RSS {peak:.0f} MiB"
                )
            print(
                f"  {'S3 store ceiling (no etcd)':34s}: {ceiling:6.2f}s  "
                f"{rate / ceiling:6.0f} MiB/s",
                flush=True,
            )
    finally:
        s3.stop()
        etcd.terminate()
        etcd.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
