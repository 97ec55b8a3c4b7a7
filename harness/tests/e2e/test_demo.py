"""`make demo` runs to completion non-interactively and leaves a working etcd cluster.

The demo runs as a subprocess with CI=true in a namespace of its own (`--namespace`),
so it never touches a user's `default/example` demo. It must not add a second operator
where one already acts: when the session's `operator` fixture (harness.testing) is
alive, it watches every namespace and the demo reuses it; otherwise the demo starts its
detached `demo-operator-<namespace>`, which watches only that namespace. Either way the
test deletes the cluster while that operator still runs (to release its finalizer),
then stops the demo's operator if it started one, then deletes the namespace.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

from etcd_operator.kube import EtcdClusterResource
from harness.demo import ROUND_TRIP_OK, operator_name
from harness.operator_process import OperatorProcess
from localcluster.cluster import LocalCluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[3]
CLUSTER = "example"


def _wait_gone(kube: Client, namespace: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            kube.get(EtcdClusterResource, CLUSTER, namespace=namespace)
        except ApiError as e:
            if e.status.code == 404:
                return True
            raise
        time.sleep(1.0)
    return False


@pytest.fixture
def demo_namespace(localcluster: LocalCluster, kube_sync: Client) -> Iterator[str]:
    namespace = f"e2e-demo-{uuid.uuid4().hex[:6]}"
    kube_sync.create(Namespace(metadata=ObjectMeta(name=namespace)))
    yield namespace
    # The cluster first, while its operator (the demo's or the session's) still runs.
    with contextlib.suppress(ApiError):
        kube_sync.delete(EtcdClusterResource, CLUSTER, namespace=namespace)
    gone = _wait_gone(kube_sync, namespace, timeout=120.0)
    OperatorProcess(localcluster.state, operator_name(namespace)).stop()
    if not gone:  # no operator released it: drop the finalizer so the namespace can go
        with contextlib.suppress(ApiError):
            kube_sync.patch(
                EtcdClusterResource,
                CLUSTER,
                {"metadata": {"finalizers": None}},
                namespace=namespace,
                patch_type=PatchType.MERGE,
            )
    kube_sync.delete(Namespace, namespace)
    assert gone, f"{namespace}/{CLUSTER} was not deleted within 120s"


def test_demo_runs_to_completion(localcluster: LocalCluster, demo_namespace: str) -> None:
    env = {
        **os.environ,
        "CI": "true",
        "LOCALCLUSTER_STATE_DIR": str(localcluster.state.root),
    }
    result = subprocess.run(
        [sys.executable, "-m", "harness.demo", "--namespace", demo_namespace],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    print(output)  # shown with `pytest -rP`: what a user of `CI=true make demo` sees
    assert result.returncode == 0, output
    assert ROUND_TRIP_OK in result.stdout, output
    assert f"example-client.{demo_namespace}.svc:2379" in result.stdout, output
    # Non-interactive: change lines only, no terminal control sequences.
    assert "\x1b[" not in result.stdout, output
