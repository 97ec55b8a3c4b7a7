"""The EtcdRestore shell's view of its verification pod: its phase, and what its containers'
logs say it found (the snapshot's size, sha256 and revision) or why it refused the snapshot."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, cast

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Pod

from etcd_operator.api.restore import EtcdRestore
from etcd_operator.resources.restore import (
    CHECK_CONTAINER,
    FETCH_CONTAINER,
    STATUS_CONTAINER,
    verification_pod_name,
)
from etcd_operator.restore.decide import SnapshotFacts, VerifyPod

_NOT_FOUND = 404


async def verify_pod(kube: AsyncClient, restore: EtcdRestore) -> VerifyPod | None:
    return await verification(kube, verification_pod_name(restore), restore.namespace)


async def verification(kube: AsyncClient, name: str, namespace: str) -> VerifyPod | None:
    """What the snapshot-checking pod `name` found so far (None: no such pod); also an
    in-place rollback's verification pod."""
    try:
        pod = await kube.get(Pod, name, namespace=namespace)
    except ApiError as e:
        if e.status.code == _NOT_FOUND:
            return None
        raise
    phase = (pod.status.phase if pod.status else None) or "Pending"
    deleting = bool(pod.metadata and pod.metadata.deletionTimestamp)
    if phase == "Succeeded":
        return VerifyPod("Succeeded", deleting, facts=await _facts(kube, name, namespace))
    if phase == "Failed":
        failure = await _failure(kube, pod, namespace)
        return VerifyPod("Failed", deleting, failure=failure)
    known = phase if phase in ("Pending", "Running") else "Unknown"
    return VerifyPod(cast(Any, known), deleting)


async def _log_lines(kube: AsyncClient, pod: str, namespace: str, container: str) -> list[str]:
    lines: list[str] = []
    async for line in kube.log(pod, namespace=namespace, container=container):
        lines.append(line.rstrip("\n"))
    return lines


_FETCHED = re.compile(r"snapshot-fetch: ok: (\d+) bytes, sha256 ([0-9a-f]{64})")
_REFUSED = re.compile(r"snapshot-fetch: ([A-Za-z0-9]+): (.*)")


async def _facts(kube: AsyncClient, pod: str, namespace: str) -> SnapshotFacts | None:
    fetched = None
    for line in await _log_lines(kube, pod, namespace, FETCH_CONTAINER):
        fetched = _FETCHED.search(line) or fetched
    revision = None
    for line in await _log_lines(kube, pod, namespace, STATUS_CONTAINER):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            revision = int(json.loads(line[line.index("{") :])["revision"])
    if fetched is None or revision is None:
        return None
    return SnapshotFacts(revision, fetched.group(2), int(fetched.group(1)))


async def _failure(kube: AsyncClient, pod: Pod, namespace: str) -> tuple[str, str]:
    assert pod.metadata is not None and pod.metadata.name is not None
    statuses = [
        *((pod.status.initContainerStatuses or []) if pod.status else []),
        *((pod.status.containerStatuses or []) if pod.status else []),
    ]
    failed = next(
        (
            s
            for s in statuses
            if s.state and s.state.terminated and s.state.terminated.exitCode != 0
        ),
        None,
    )
    if failed is None:
        return "VerificationFailed", "the verification pod failed"
    lines: list[str] = []
    with contextlib.suppress(ApiError):
        lines = await _log_lines(kube, pod.metadata.name, namespace, failed.name)
    last = next((line for line in reversed(lines) if line.strip()), "")
    if failed.name == FETCH_CONTAINER:
        for line in reversed(lines):
            refused = _REFUSED.search(line)
            if refused:
                return refused.group(1), refused.group(2)
        return "SnapshotUnreadable", last or "the snapshot could not be read"
    if failed.name == CHECK_CONTAINER:
        return "SnapshotCorrupt", f"etcdutl snapshot restore refused it: {last}"[:1024]
    return "VerificationFailed", f"{failed.name}: {last}"[:1024]
