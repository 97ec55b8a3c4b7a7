"""Run as a process: stream `size` MiB of generated data to S3, print the peak RSS (KiB).

A child process, so that its peak RSS measures exactly one upload and nothing else of the
test session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path, PurePosixPath

from etcd_operator.objectstore import (
    FileLocation,
    Location,
    Manifest,
    S3Credentials,
    S3Location,
    open_writer,
)

CHUNK = 32 * 1024  # etcd sends snapshots in 32 KiB chunks


async def upload(location: Location, mib: int) -> Manifest:
    digest = hashlib.sha256()
    block = bytes(range(256)) * (CHUNK // 256)
    async with open_writer(location) as writer:
        for i in range(mib * 1024 * 1024 // CHUNK):
            chunk = i.to_bytes(8, "big") + block[8:]
            digest.update(chunk)
            await writer.write(chunk)
        manifest = Manifest(
            sha256=digest.hexdigest(),
            size=mib * 1024 * 1024,
            revision=1,
            cluster_id="1",
            etcd_version="3.6.0",
            member="m-0",
            start_time="2026-01-01T00:00:00Z",
            completion_time="2026-01-01T00:00:01Z",
        )
        await writer.commit(manifest)
    return manifest


def peak_rss_kib() -> int:
    """VmHWM: this process image's peak RSS (ru_maxrss would carry the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    spec = json.loads(sys.argv[1])
    location: Location
    if "path" in spec:
        location = FileLocation(PurePosixPath(spec["path"]))
    else:
        location = S3Location(
            bucket=spec["bucket"],
            key=spec["key"],
            endpoint_url=spec["endpoint"],
            region="us-east-1",
            force_path_style=True,
            credentials=S3Credentials(spec["access_key"], spec["secret_key"]),
        )
    manifest = asyncio.run(upload(location, int(spec["mib"])))
    peak = peak_rss_kib()
    print(json.dumps({"peak_rss_kib": peak, "sha256": manifest.sha256}))


if __name__ == "__main__":
    main()
