"""The process node runs pods like a kubelet: env, volumes, probes, restarts, deletion."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.resources.core_v1 import Event, Namespace, Pod

from localcluster import faults, network
from localcluster.config import StateDir
from localcluster.paths import find_pod
from localcluster.testing import pods as t

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
SHELL = "busybox:1.36"
# Mount paths are created on the host's filesystem (processes share it): keep them in one place.
M = "/run/node-e2e"


@pytest.fixture(scope="module")
def ns(api: Client) -> Iterator[str]:
    name = f"node-e2e-{uuid.uuid4().hex[:6]}"
    t.create_namespace(api, name)
    yield name
    api.delete(Namespace, name)


def pod(name: str, command: str, **spec: Any) -> dict[str, Any]:
    return t.pod_body(name, SHELL, ["sh", "-c", command], **spec)


create_in = t.create_in


def _reasons(api: Client, namespace: str, involved: str) -> set[str]:
    """The reasons of the Events about `involved`."""
    events = api.list(Event, namespace=namespace, fields={"involvedObject.name": involved})
    return {e.reason or "" for e in events}


def test_secret_volume_host_path_and_field_ref_env_are_visible(
    api: Client, ns: str, tmp_path: Path
) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "stringData": {"password": "hunter2"}}  # fmt: skip
    env = [
        {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
        for name, path in [("POD", "metadata.name"), ("NS", "metadata.namespace"),
                           ("IP", "status.podIP"), ("NODE", "spec.nodeName")]
    ]  # fmt: skip
    env.append({"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}})
    script = (
        f'echo "$POD $NS $IP $NODE $PW" > {M}/out/env; cp {M}/creds/password {M}/out/; sleep 3600'
    )
    spec = pod("env", script, container={
        "env": env,
        "volumeMounts": [{"name": "creds", "mountPath": f"{M}/creds"},
                         {"name": "out", "mountPath": f"{M}/out"}],
    }, volumes=[{"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "out", "hostPath": {"path": str(tmp_path)}}])  # fmt: skip
    create_in(api, ns, secret, spec)
    t.wait_for(lambda: t.is_ready(api, ns, "env"), what="env ready")
    line = t.wait_for(lambda: t.text_of(tmp_path / "env"))
    status = t.pod_status(api, ns, "env")
    node = api.get(Pod, "env", namespace=ns).to_dict()["spec"]["nodeName"]
    assert line.split() == ["env", ns, status["podIP"], node, "hunter2"]
    # Copied by the script after it wrote env: it may not be there yet.
    assert t.wait_for(lambda: t.text_of(tmp_path / "password"), what="password") == "hunter2"
    assert t.pod_status(api, ns, "env")["phase"] == "Running"


def test_sigkilled_container_restarts_and_its_restart_count_rises(
    state: StateDir, api: Client, ns: str
) -> None:
    create_in(api, ns, pod("crash", "sleep 3600"))
    t.wait_for(lambda: t.is_ready(api, ns, "crash"), what="crash ready")
    faults.kill_container(state, ns, "crash", "main")
    status = t.wait_for(lambda: t.restarted(api, ns, "crash", "main"), what="restart")
    assert status["lastState"]["terminated"]["exitCode"] == 137
    t.wait_for(lambda: t.is_ready(api, ns, "crash"), what="ready again")


def test_liveness_failure_restarts_the_container(api: Client, ns: str) -> None:
    probe = {"exec": {"command": ["test", "-f", f"{M}/data/alive"]}, "periodSeconds": 1,
             "failureThreshold": 2}  # fmt: skip
    script = f"touch {M}/data/alive; sleep 1; rm {M}/data/alive; sleep 3600"
    spec = pod("live", script, container={
        "livenessProbe": probe, "volumeMounts": [{"name": "d", "mountPath": f"{M}/data"}],
    }, volumes=[{"name": "d", "emptyDir": {}}])  # fmt: skip
    create_in(api, ns, spec)
    t.wait_for(lambda: t.restarted(api, ns, "live", "main"), what="liveness restart")


def test_init_containers_run_in_order_before_the_pod_succeeds(api: Client, ns: str) -> None:
    inits = [
        {"name": f"init-{i}", "image": SHELL, "command": ["sh", "-c", f"echo {i} >> {M}/w/order"],
         "volumeMounts": [{"name": "w", "mountPath": f"{M}/w"}]}
        for i in (1, 2)
    ]  # fmt: skip
    spec = pod("once", f'test "$(cat {M}/w/order | tr -d "\\n")" = 12', restartPolicy="Never",
               initContainers=inits, volumes=[{"name": "w", "emptyDir": {}}],
               container={"volumeMounts": [{"name": "w", "mountPath": f"{M}/w"}]})  # fmt: skip
    create_in(api, ns, spec)
    status = t.wait_for(lambda: t.finished(api, ns, "once"))
    assert status["phase"] == "Succeeded", status
    assert [c["state"]["terminated"]["exitCode"] for c in status["initContainerStatuses"]] == [0, 0]


def test_unknown_image_reports_image_pull_back_off(api: Client, ns: str) -> None:
    spec = pod("noimage", "true", container={"image": "example.com/nothing-like-this:1.0"})
    create_in(api, ns, spec)
    t.wait_for(
        lambda: t.container_status(api, ns, "noimage", "main").get("state", {}).get("waiting", {})
        .get("reason") == "ImagePullBackOff",
        what="ImagePullBackOff",
    )  # fmt: skip
    t.wait_for(lambda: _reasons(api, ns, "noimage") & {"Failed"}, what="a Failed Event")


def test_deletion_sends_sigterm_cleans_up_and_removes_the_pod(
    state: StateDir, api: Client, ns: str, tmp_path: Path
) -> None:
    script = f"trap 'echo bye > {M}/out/term; exit 0' TERM; while true; do sleep 0.2; done"
    mounts = [{"name": "o", "mountPath": f"{M}/out"}]
    spec = pod("term", script, container={"volumeMounts": mounts},
               volumes=[{"name": "o", "hostPath": {"path": str(tmp_path)}}])  # fmt: skip
    create_in(api, ns, spec)
    t.wait_for(lambda: t.is_ready(api, ns, "term"), what="term ready")
    _, record = find_pod(state, ns, "term")
    api.delete(Pod, "term", namespace=ns)
    t.wait_for(lambda: t.gone(api, ns, "term"), timeout=20, what="pod gone")
    assert (tmp_path / "term").read_text() == "bye\n"
    assert record.netns not in network.list_pod_netns()
    assert not network.link_exists(record.veth)


def test_config_map_items_env_from_and_downward_api_files(
    api: Client, ns: str, tmp_path: Path
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"},
          "data": {"mode": "fast", "level": "3"}}  # fmt: skip
    script = f"cp {M}/conf/m {M}/info/name {M}/all/level {M}/out/; echo $CFG_mode > {M}/out/env"
    spec = pod("files", f"{script}; sleep 3600", container={
        "envFrom": [{"configMapRef": {"name": "conf"}, "prefix": "CFG_"}],
        "volumeMounts": [{"name": "conf", "mountPath": f"{M}/conf"},
                         {"name": "info", "mountPath": f"{M}/info"},
                         {"name": "all", "mountPath": f"{M}/all"},
                         {"name": "out", "mountPath": f"{M}/out"}],
    }, volumes=[
        {"name": "conf", "configMap": {"name": "conf", "items": [{"key": "mode", "path": "m"}]}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"name": "all", "projected": {"sources": [{"configMap": {"name": "conf"}}]}},
        {"name": "out", "hostPath": {"path": str(tmp_path)}},
    ])  # fmt: skip
    create_in(api, ns, cm, spec)
    # env is written last, and exists (empty) before its line is.
    t.wait_for(lambda: t.text_of(tmp_path / "env"), what="files copied")
    assert (tmp_path / "m").read_text() == "fast"
    assert (tmp_path / "name").read_text() == "files"
    assert (tmp_path / "level").read_text() == "3"
    assert (tmp_path / "env").read_text() == "fast\n"


def test_an_unsupported_volume_type_is_reported(api: Client, ns: str) -> None:
    spec = pod("nfs", "true", volumes=[{"name": "v", "nfs": {"server": "x", "path": "/"}}])
    create_in(api, ns, spec)
    t.wait_for(
        lambda: any(
            c["type"] == "VolumesReady" and c["status"] == "False" and "nfs" in c["message"]
            for c in t.pod_status(api, ns, "nfs").get("conditions") or []
        ),
        what="VolumesReady=False",
    )
    # The Event and the status are written apart: either may land first.
    t.wait_for(lambda: _reasons(api, ns, "nfs") & {"FailedMount"}, what="a FailedMount Event")


def test_pvc_data_survives_the_pod_and_wipe_volume_empties_it(
    state: StateDir, api: Client, ns: str
) -> None:
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    spec = pod("writer", "echo kept > /run/node-e2e/data/file", restartPolicy="Never",
               container={"volumeMounts": [{"name": "d", "mountPath": f"{M}/data"}]},
               volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}])  # fmt: skip
    create_in(api, ns, pvc, spec)
    assert t.wait_for(lambda: t.finished(api, ns, "writer"))["phase"] == "Succeeded"
    api.delete(Pod, "writer", namespace=ns)
    t.wait_for(lambda: t.gone(api, ns, "writer"), what="writer gone")
    path = faults.volume_path(state, ns, "data")
    assert (path / "file").read_text() == "kept\n"
    faults.wipe_volume(state, ns, "data")
    assert path.is_dir() and not any(path.iterdir())


def test_a_crashing_container_enters_crash_loop_back_off(api: Client, ns: str) -> None:
    create_in(api, ns, pod("crashloop", "exit 3"))

    def backing_off() -> dict[str, Any] | None:
        status = t.container_status(api, ns, "crashloop", "main")
        waiting = status.get("state", {}).get("waiting", {})
        return status if waiting.get("reason") == "CrashLoopBackOff" else None

    status = t.wait_for(backing_off, what="CrashLoopBackOff")
    assert status["restartCount"] >= 1
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert t.pod_status(api, ns, "crashloop")["phase"] == "Running"


def test_container_logs_are_served_through_the_api(api: Client, ns: str) -> None:
    create_in(api, ns, pod("talker", "echo hello-from-the-node; sleep 3600"))
    t.wait_for(lambda: t.is_ready(api, ns, "talker"), what="talker ready")
    lines = t.wait_for(
        lambda: "".join(api.log("talker", namespace=ns, container="main")), what="logs"
    )
    assert "hello-from-the-node" in lines
