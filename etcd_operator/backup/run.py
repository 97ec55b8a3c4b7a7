"""`etcd-operator backup`: the backup Job's one attempt, from the etcd client to the store.

Reaches etcd only through EtcdClient with the operator's client certificate and root's
password (mounted Secrets), picks a member (member.py), streams its snapshot into the
destination and commits it with its manifest; any failure aborts the write, so nothing
that looks complete is left behind. The result goes to the termination message; the exit
code says whether the Job should retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from etcd_operator.backup import contract
from etcd_operator.backup.destination import from_env
from etcd_operator.backup.member import Candidate, candidates
from etcd_operator.etcd import (
    Credentials,
    EtcdClient,
    EtcdConfig,
    EtcdError,
    MemberStatus,
    TLSConfig,
    format_member_id,
)
from etcd_operator.objectstore import (
    Location,
    Manifest,
    ObjectStoreError,
    S3Credentials,
    open_writer,
)

# mallopt(3) parameters.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


class BackupFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(directory: str, key: str) -> bytes | None:
    try:
        return (Path(directory) / key).read_bytes()
    except FileNotFoundError:
        return None


def _tls(mounts: contract.Mounts) -> TLSConfig | None:
    ca = _read(mounts.tls, contract.TLS_CA_FILE)
    if ca is None:
        return None
    cert, key = _read(mounts.tls, contract.TLS_CERT_FILE), _read(mounts.tls, contract.TLS_KEY_FILE)
    return TLSConfig(ca_cert=ca, client_cert=cert, client_key=key)


def _credentials(mounts: contract.Mounts) -> Credentials | None:
    password = _read(mounts.root, contract.ROOT_PASSWORD_FILE)
    return None if password is None else Credentials(contract.ROOT_USER, password.decode())


def _s3_credentials(mounts: contract.Mounts) -> S3Credentials | None:
    key_id = _read(mounts.s3, contract.S3_ACCESS_KEY)
    secret = _read(mounts.s3, contract.S3_SECRET_KEY)
    if key_id is None or secret is None:
        return None
    return S3Credentials(key_id.decode().strip(), secret.decode().strip())


async def _statuses(client: EtcdClient, urls: list[str]) -> dict[str, MemberStatus | None]:
    async def one(url: str) -> MemberStatus | None:
        try:
            return await client.status(url)
        except EtcdError:
            return None  # a member down is simply not a candidate

    answers = await asyncio.gather(*(one(url) for url in urls))
    return dict(zip(urls, answers, strict=True))


async def _choose(client: EtcdClient) -> Candidate:
    try:
        members = await client.member_list()
    except EtcdError as e:
        raise BackupFailed(type(e).__name__, f"listing the members: {e}") from None
    urls = [url for m in members.members for url in m.client_urls]
    found = candidates(members, await _statuses(client, urls))
    if not found:
        raise BackupFailed("NoHealthyMember", "no voting member answered with a leader")
    return found[0]


async def _key_count(client: EtcdClient, chosen: Candidate) -> int | None:
    """Keys at the recorded revision, read from the member that served the snapshot (it has
    applied that revision), so a restore drill can check the restored cluster against it.
    None when etcd cannot say (the revision was compacted meanwhile): the drill then checks
    the revision only; a failed count never fails a snapshot that is stored."""
    try:
        return await client.key_count(
            chosen.status.revision, serializable=True, endpoint=chosen.endpoint
        )
    except EtcdError as e:
        print(f"backup: no key count at revision {chosen.status.revision}: {e}", flush=True)
        return None


_POD_MOUNTS = contract.Mounts()


async def attempt(env: Mapping[str, str], mounts: contract.Mounts = _POD_MOUNTS) -> contract.Result:
    start = _now()
    endpoints = [e for e in env.get(contract.ENV_ENDPOINTS, "").split(",") if e]
    try:
        location: Location = from_env(
            env.get(contract.ENV_DESTINATION, ""), _s3_credentials(mounts)
        )
        config = EtcdConfig(
            endpoints=tuple(endpoints),
            tls=_tls(mounts),
            credentials=_credentials(mounts),
            dial_timeout=3.0,
            request_timeout=10.0,
            snapshot_chunk_timeout=30.0,
        )
    except ValueError as e:
        return contract.Result("Failed", "InvalidConfiguration", str(e), start_time=start)
    try:
        async with EtcdClient(config) as client:
            chosen = await _choose(client)
            print(
                f"backup: snapshot of member {chosen.name} ({chosen.endpoint}) to {location.uri}",
                flush=True,  # the log says which member serves it while the stream runs
            )
            async with (
                client.snapshot(chosen.endpoint) as stream,
                open_writer(location) as writer,
            ):
                async for chunk in stream:
                    await writer.write(chunk)
                assert stream.sha256 is not None  # set once the stream ended verified
                keys = await _key_count(client, chosen)
                manifest = Manifest(
                    sha256=stream.sha256,
                    size=stream.size,
                    revision=chosen.status.revision,
                    cluster_id=format_member_id(chosen.status.cluster_id),
                    etcd_version=chosen.status.version,
                    member=chosen.name,
                    start_time=start,
                    completion_time=_now(),
                    keys=keys,
                )
                await writer.commit(manifest)
    except BackupFailed as e:
        return contract.Result("Failed", e.reason, str(e), start_time=start)
    except ObjectStoreError as e:
        return contract.Result("Failed", e.reason, str(e), start_time=start)
    except EtcdError as e:
        return contract.Result("Failed", type(e).__name__, str(e), start_time=start)
    return contract.Result(
        "Succeeded",
        "SnapshotStored",
        f"{manifest.size} bytes of revision {manifest.revision} from {manifest.member}",
        location=location.uri,
        size=manifest.size,
        sha256=manifest.sha256,
        revision=manifest.revision,
        cluster_id=manifest.cluster_id,
        etcd_version=manifest.etcd_version,
        member=manifest.member,
        keys=manifest.keys,
        start_time=manifest.start_time,
        completion_time=manifest.completion_time,
    )


def _flat_allocator() -> None:
    """glibc: serve the 8 MiB part buffers by mmap, always, and keep few arenas. Otherwise
    glibc raises its mmap threshold after the first free and keeps freed parts in each
    worker thread's arena: peak RSS then grows with the snapshot (measured: +40 MiB at
    570 MiB) instead of staying flat."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    _flat_allocator()
    try:
        result = asyncio.run(attempt(env))
    except Exception as e:  # reported, not a stack trace in the message
        result = contract.Result("Failed", "InternalError", f"{type(e).__name__}: {e}")
    text = result.to_json()
    with contextlib.suppress(OSError):
        Path(env.get(contract.ENV_RESULT_PATH, contract.RESULT_PATH)).write_text(text)
    print(f"backup: {result.outcome} {result.reason}: {result.message}", file=sys.stderr)
    return result.exit_code
