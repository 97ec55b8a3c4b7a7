"""`make demo`: localcluster up, the operator running, a 3-member etcd cluster, live.

Steps: start localcluster (building its binaries on first use), install the CRDs, run
the operator detached (it keeps running after the demo exits, so the cluster can be
scaled by hand), apply ``examples/etcdcluster.yaml``, show the cluster converging until
it is Ready, then write and read a key through the cluster's client Service.

The demo never runs a second operator where one already acts: if an operator started
by localcluster (e.g. a test session's) already watches the demo's namespace, the demo
uses it. Its own operator watches only the demo's namespace, so it never acts on
clusters of tests running against the same localcluster.

Non-interactive (stdout not a terminal, or CI=true): one line per change, exit status
0 on success and 1 on failure. ``--namespace`` runs it in another namespace (tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client, KubeConfig, codecs
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Namespace, Pod

from harness.liveview import LiveView, Snapshot, is_ready, pod_summary, summary
from harness.operator_process import (
    OperatorProcess,
    install_crds,
    running_operators,
)
from localcluster import cluster as localcluster
from localcluster.config import StateDir

# The repository's example (harness is installed editable from harness/src/harness/).
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "etcdcluster.yaml"
FIELD_MANAGER = "etcd-operator-demo"
INSTANCE_LABEL = "app.kubernetes.io/instance"
POLL_INTERVAL = 1.0
NOT_FOUND_GRACE = 30.0  # seconds an applied EtcdCluster may take to be readable
DEMO_KEY = "/demo/greeting"
ROUND_TRIP_OK = "key round-trip OK"


class DemoError(Exception):
    """A failure the demo explains itself; no traceback needed."""


@dataclass(frozen=True)
class Operator:
    """The operator the demo relies on: its own (detached) one, or one already running."""

    state: StateDir
    label: str
    log_path: Path
    own: OperatorProcess | None = None
    other_pid: int | None = None

    def alive(self) -> bool:
        if self.own is not None:
            return self.own.alive
        return any(r.pid == self.other_pid for r in running_operators(self.state))


def operator_name(namespace: str) -> str:
    return "demo-operator" if namespace == "default" else f"demo-operator-{namespace}"


def interactive_output() -> bool:
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return sys.stdout.isatty() and not ci


def say(message: str) -> None:
    print(message, flush=True)


def step(message: str) -> None:
    say(f"==> {message}")


# ---- operator --------------------------------------------------------------------------


def ensure_operator(state: StateDir, namespace: str) -> Operator:
    """Reuse an operator that already watches `namespace`, else start the demo's own."""
    name = operator_name(namespace)
    own = OperatorProcess(state, name, namespaces=(namespace,), detach=True)
    others = [r for r in running_operators(state) if r.name != name and r.watches(namespace)]
    if others and not own.alive:
        other = others[0]
        say(
            f"    using the operator already running against this localcluster: "
            f"{other.name} (pid {other.pid}, log {other.log_path})"
        )
        if not other.detached:
            say(
                "    note: it belongs to another process (e.g. a test session) and stops "
                "with it; run the demo again then to start its own operator"
            )
        return Operator(state, other.name, other.log_path, other_pid=other.pid)
    own.start()
    verb = {"reused": "already running", "restarted": "restarted (its code changed)"}
    say(
        f"    {name} {verb.get(own.last_start or '', 'started')} "
        f"(pid {own.pid}, watching namespace {namespace}, log {own.log_path})"
    )
    for other in others:
        say(
            f"    warning: operator {other.name} (pid {other.pid}) also watches "
            f"{namespace}; two operators acting on one cluster fight. Stop one of them."
        )
    return Operator(state, name, own.log_path, own=own)


# ---- the EtcdCluster -------------------------------------------------------------------


def ensure_namespace(client: Client, namespace: str) -> None:
    try:
        client.get(Namespace, namespace)
    except ApiError as e:
        if e.status.code != 404:
            raise
        with contextlib.suppress(ApiError):  # created meanwhile: fine
            client.create(Namespace(metadata=ObjectMeta(name=namespace)))


def apply_example(client: Client, namespace: str) -> str:
    """Server-side apply the example into `namespace`; returns the cluster's name.

    Not forced: if someone changed a field the demo set (e.g. scaled it with kubectl),
    their change wins and the demo says so, rather than undoing it."""
    import etcd_operator.kube  # noqa: F401  (registers the EtcdCluster kind with codecs)

    name = ""
    for doc in yaml.safe_load_all(EXAMPLE.read_text()):
        if not doc:
            continue
        doc["metadata"]["namespace"] = namespace
        name = str(doc["metadata"]["name"])
        try:
            client.apply(codecs.from_dict(doc), field_manager=FIELD_MANAGER)
        except ApiError as e:
            if e.status.code != 409:
                raise
            say(f"    kept the existing {name}: it was changed since ({e.status.message})")
    if not name:
        raise DemoError(f"{EXAMPLE} holds no resource")
    return name


def snapshot(client: Client, namespace: str, name: str, elapsed: float) -> Snapshot:
    from etcd_operator.kube import EtcdClusterResource

    body: dict[str, Any] = client.get(EtcdClusterResource, name, namespace=namespace).to_dict()  # type: ignore[no-untyped-call]
    pods = [
        p.to_dict() for p in client.list(Pod, namespace=namespace, labels={INSTANCE_LABEL: name})
    ]
    events = [
        e.to_dict()
        for e in client.list(Event, namespace=namespace, fields={"involvedObject.name": name})
        if e.involvedObject.kind == "EtcdCluster"
    ]
    return Snapshot(cluster=body, pods=pods, events=events, elapsed=elapsed)


def wait_ready(
    client: Client,
    namespace: str,
    name: str,
    operator: Operator,
    *,
    timeout: float,
    interactive: bool,
) -> tuple[Snapshot, Operator]:
    """Show the cluster until Ready; returns it and the operator acting on it by then."""
    start = time.monotonic()
    view = LiveView(
        sys.stdout,
        interactive=interactive,
        since=datetime.now(UTC) - timedelta(seconds=5),
    )
    last: Snapshot | None = None
    try:
        while True:
            elapsed = time.monotonic() - start
            try:
                last = snapshot(client, namespace, name, elapsed)
            except ApiError as e:
                if e.status.code != 404:
                    raise
                if elapsed > NOT_FOUND_GRACE:
                    raise DemoError(f"{namespace}/{name} does not exist (deleted?)") from e
            else:
                view.update(last)
                if is_ready(last.cluster):
                    return last, operator
            if not operator.alive():
                view.close()
                if operator.own is not None:
                    raise DemoError(
                        f"the operator {operator.label} exited; see its log: "
                        f"{operator.log_path}" + _log_tail(operator.log_path)
                    )
                # Another process's operator we relied on stopped with its owner.
                say(f"    operator {operator.label} stopped; taking over")
                operator = ensure_operator(operator.state, namespace)
            if elapsed > timeout:
                view.close()
                raise DemoError(_timeout_message(namespace, name, operator, timeout, last))
            time.sleep(POLL_INTERVAL)
    finally:
        view.close()


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last {len(tail)} lines of {path} ---\n" + "\n".join(tail)


def _timeout_message(
    namespace: str, name: str, operator: Operator, timeout: float, last: Snapshot | None
) -> str:
    parts = [f"{namespace}/{name} did not become Ready within {timeout:.0f}s."]
    if last is None:
        parts.append("The EtcdCluster could not be read at all.")
    else:
        parts.append(f"Last seen: {summary(last)}")
        if last.pods:
            parts.append("Pods:")
            for pod in last.pods:
                parts.append(f"  {pod['metadata']['name']}: {pod_summary(pod)}")
                for c in (pod.get("status") or {}).get("containerStatuses") or []:
                    state = c.get("state") or {}
                    detail = state.get("waiting") or state.get("terminated")
                    if detail and detail.get("message"):
                        parts.append(f"    {c.get('name')}: {detail['message']}")
        else:
            parts.append("Pods: none created yet.")
    parts.append(f"Operator log: {operator.log_path}")
    return "\n".join(parts) + _log_tail(operator.log_path)


# ---- etcd ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the demo writes, and how an application of the cluster would authenticate."""

    endpoint: str
    kubeconfig: Path
    namespace: str
    name: str
    auth: bool


async def _once(target: Target, value: str) -> tuple[int, str]:
    """One put and get, as an application would: the client certificate Secret the operator
    issued (https endpoints) and root's password Secret (auth on)."""
    from lightkube import AsyncClient

    from harness.clusters import client_tls, etcd_client, root_credentials

    kube = AsyncClient(KubeConfig.from_file(target.kubeconfig))
    try:
        ns, name = target.namespace, target.name
        tls = await client_tls(kube, ns, name) if target.endpoint.startswith("https") else None
        creds = await root_credentials(kube, ns, name) if target.auth else None
    finally:
        await kube.close()
    async with etcd_client((target.endpoint,), tls, creds) as etcd:
        revision = await etcd.put(DEMO_KEY, value)
        got = await etcd.get(DEMO_KEY)
        return revision, got.value.decode() if got else "<missing>"


async def _round_trip(target: Target, value: str, patience: float) -> tuple[int, str]:
    from etcd_operator.etcd import EtcdError

    deadline = time.monotonic() + patience
    while True:
        try:
            return await _once(target, value)
        # The Service's endpoints may lag a moment, and root's Secret appears when the
        # operator turns auth on, just after the cluster formed.
        except (EtcdError, ApiError) as e:
            if time.monotonic() > deadline:
                raise DemoError(f"writing {DEMO_KEY} through {target.endpoint} failed: {e}") from e
            await asyncio.sleep(1.0)


def round_trip(target: Target, timeout: float = 60.0) -> None:
    endpoint = target.endpoint
    value = f"hello from the etcd-operator demo at {datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z"
    revision, got = asyncio.run(_round_trip(target, value, timeout))
    say(f"    put {DEMO_KEY} = {value!r} (revision {revision})")
    say(f"    get {DEMO_KEY} -> {got!r}")
    if got != value:
        raise DemoError(f"read back {got!r}, wrote {value!r}")
    say(f"    {ROUND_TRIP_OK} through {endpoint}")


# ---- main ------------------------------------------------------------------------------


def print_next_steps(
    lc: localcluster.LocalCluster, operator: Operator, namespace: str, name: str
) -> None:
    kubeconfig = lc.kubeconfig
    kubectl = f"{lc.binaries.kubectl} --kubeconfig {kubeconfig}"
    ns = "" if namespace == "default" else f" -n {namespace}"
    patch = shlex.quote('{"spec":{"replicas":5}}')
    say("")
    say(f"Done. {name} is yours to play with.")
    if operator.own is not None:
        say(f"  The operator keeps running in the background; its log: {operator.log_path}")
    else:
        say(f"  The operator acting on it is {operator.label!r}; its log: {operator.log_path}")
    say(f"  kubectl is {lc.binaries.kubectl}; for this shell:")
    say(f"    alias kubectl='{kubectl}'")
    say("  scale out to 5 members (one learner at a time), or back to 3:")
    say(f"    {kubectl} patch etcdcluster {name}{ns} --type merge -p {patch}")
    say("  watch it:")
    say(f"    kubectl get etcdclusters{ns} -w")
    say(f"    kubectl get pods{ns} -o wide")
    say(f"    kubectl describe etcdcluster {name}{ns}")
    say("  stop everything (operator, etcd pods, localcluster):")
    say("    make demo-down")


def run(namespace: str, timeout: float, interactive: bool) -> int:
    state = StateDir.default()
    step("Starting localcluster (builds its binaries on first use)")
    nodes = int(os.environ.get("LOCALCLUSTER_NODES", "1"))
    lc = localcluster.up(state, nodes=nodes)
    say(f"    kubeconfig: {lc.kubeconfig}")

    step("Installing the CRDs and starting the operator")
    install_crds(lc.kubeconfig)
    operator = ensure_operator(state, namespace)

    client = Client(KubeConfig.from_file(lc.kubeconfig), field_manager=FIELD_MANAGER)
    try:
        step(f"Applying {EXAMPLE.relative_to(EXAMPLE.parent.parent)} in namespace {namespace}")
        ensure_namespace(client, namespace)
        name = apply_example(client, namespace)

        step(f"Waiting for {name} to be Ready (up to {timeout:.0f}s)")
        ready, operator = wait_ready(
            client, namespace, name, operator, timeout=timeout, interactive=interactive
        )
        say(f"    {name} is Ready after {ready.elapsed:.0f}s")
    finally:
        client.close()

    endpoint = (ready.cluster.get("status") or {}).get("clientEndpoint")
    if not endpoint:
        raise DemoError(f"{name} is Ready but its status has no clientEndpoint")
    step(f"Writing and reading a key through the client Service {endpoint}")
    auth = bool(((ready.cluster.get("spec") or {}).get("auth") or {}).get("enabled"))
    round_trip(Target(str(endpoint), lc.kubeconfig, namespace, name, auth))
    print_next_steps(lc, operator, namespace, name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.demo", description=__doc__)
    parser.add_argument("--namespace", default="default", help="where to create the cluster")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready")
    args = parser.parse_args(argv)
    try:
        return run(args.namespace, args.timeout, interactive_output())
    except DemoError as e:
        print(f"\ndemo failed: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(
            "\ninterrupted; the operator and localcluster keep running (make demo-down stops them)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
