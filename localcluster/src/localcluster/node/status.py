"""Pod status as a kubelet reports it, computed from the worker's in-memory state."""

from __future__ import annotations

from typing import Any, Protocol

from localcluster import config
from localcluster.node.containers import ContainerRun
from localcluster.node.kube import now
from localcluster.paths import PodRecord

Obj = dict[str, Any]
__all__ = ["now", "pod_status"]


class PodState(Protocol):
    """What the status is computed from (the pod's worker, pod.py)."""

    pod: Obj
    record: PodRecord
    init_runs: list[ContainerRun]
    runs: list[ContainerRun]
    finished: bool
    initialized: bool
    sandbox_ready: bool
    pod_condition: Obj | None
    start_time: str


def _condition(kind: str, ok: bool, reason: str | None = None, message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def phase(w: PodState) -> str:
    runs = w.runs
    if w.finished:
        codes = [_exit_code(r.state) for r in w.init_runs + runs]
        if any(c not in (None, 0) for c in codes):
            return "Failed"
        return "Succeeded" if all(c == 0 for c in (_exit_code(r.state) for r in runs)) else "Failed"
    if w.initialized and any(r.proc is not None for r in runs):
        return "Running"
    return "Pending"


def _exit_code(state: Obj) -> int | None:
    term = state.get("terminated")
    return None if term is None else int(term["exitCode"])


def pod_status(w: PodState) -> Obj:
    ready = bool(w.runs) and all(r.ready for r in w.runs)
    not_ready = sorted(r.name for r in w.runs if not r.ready)
    reason = None if ready else "ContainersNotReady"
    message = "" if ready else f"containers with unready status: [{' '.join(not_ready)}]"
    init_reason = None if w.initialized else "ContainersNotInitialized"
    conditions = [
        _condition("PodReadyToStartContainers", w.sandbox_ready),
        _condition("Initialized", w.initialized, init_reason),
        _condition("ContainersReady", ready, reason, message),
        _condition("Ready", ready, reason, message),
        _condition("PodScheduled", True),
    ]
    if w.pod_condition is not None:
        conditions.append(
            _condition("VolumesReady", False, w.pod_condition["reason"], w.pod_condition["message"])
        )
    body: Obj = {
        "phase": phase(w),
        "hostIP": config.GATEWAY_IP,
        "hostIPs": [{"ip": config.GATEWAY_IP}],
        "conditions": _keep_transition_times(w, conditions),
        "containerStatuses": [r.status() for r in w.runs],
    }
    if w.init_runs:
        body["initContainerStatuses"] = [r.status() for r in w.init_runs]
    if w.record.ip:
        body["podIP"] = w.record.ip
        body["podIPs"] = [{"ip": w.record.ip}]
    if w.start_time:
        body["startTime"] = w.start_time
    return body


def _keep_transition_times(w: PodState, conditions: list[Obj]) -> list[Obj]:
    """lastTransitionTime only moves when a condition's status changes."""
    previous = {c["type"]: c for c in (w.pod.get("status") or {}).get("conditions") or []}
    for cond in conditions:
        old = previous.get(cond["type"])
        if (
            old is not None
            and old.get("status") == cond["status"]
            and old.get("lastTransitionTime")
        ):
            cond["lastTransitionTime"] = old["lastTransitionTime"]
    return conditions
