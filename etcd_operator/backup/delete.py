"""`etcd-operator backup-delete`: the delete Job of an EtcdBackup whose deletionPolicy is
Delete removes its snapshot and manifest from the store.

Told where in ETCD_BACKUP_DESTINATION (the same value the backup Job had), given the S3
keys or the claim as mounts; reports like the backup Job, in its termination message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from etcd_operator.backup import contract
from etcd_operator.backup.destination import from_env
from etcd_operator.backup.run import _s3_credentials
from etcd_operator.objectstore import ObjectStoreError, delete

_POD_MOUNTS = contract.Mounts()


async def attempt(env: Mapping[str, str], mounts: contract.Mounts = _POD_MOUNTS) -> contract.Result:
    try:
        location = from_env(env.get(contract.ENV_DESTINATION, ""), _s3_credentials(mounts))
    except ValueError as e:
        return contract.Result("Failed", "InvalidConfiguration", str(e))
    try:
        await delete(location)
    except ObjectStoreError as e:
        return contract.Result("Failed", e.reason, str(e))
    return contract.Result(
        "Succeeded", "SnapshotDeleted", f"{location.uri} and its manifest are gone",
        location=location.uri,
    )  # fmt: skip


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    try:
        result = asyncio.run(attempt(env))
    except Exception as e:  # reported, not a stack trace in the message
        result = contract.Result("Failed", "InternalError", f"{type(e).__name__}: {e}")
    with contextlib.suppress(OSError):
        Path(env.get(contract.ENV_RESULT_PATH, contract.RESULT_PATH)).write_text(result.to_json())
    print(f"backup-delete: {result.outcome} {result.reason}: {result.message}", file=sys.stderr)
    return result.exit_code
