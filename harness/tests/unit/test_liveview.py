"""The demo's live view: readiness, table rendering, and change-only log lines."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from harness.liveview import LiveView, Snapshot, is_ready, member_rows, pod_summary, render


def _cluster(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "example", "namespace": "default", "generation": 1},
        "spec": {"replicas": 3},
        "status": status,
    }


def _available(value: str) -> list[dict[str, str]]:
    return [{"type": "Available", "status": value, "reason": "QuorumHealthy"}]


def _pod(name: str, phase: str = "Running", ready: bool = True, **extra: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": {"name": name},
        "status": {"phase": phase, "conditions": conditions, **extra},
    }


def _event(reason: str, when: str, uid: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid},
        "type": "Normal",
        "reason": reason,
        "message": f"{reason} happened",
        "lastTimestamp": when,
    }


def test_ready_needs_running_all_ready_and_available() -> None:
    ready = _cluster(phase="Running", readyReplicas=3, conditions=_available("True"))
    assert is_ready(ready)
    assert not is_ready(_cluster(phase="Running", readyReplicas=2, conditions=_available("True")))
    assert not is_ready(_cluster(phase="Creating", readyReplicas=3, conditions=_available("True")))
    assert not is_ready(_cluster(phase="Running", readyReplicas=3, conditions=_available("False")))
    stale = _cluster(phase="Running", readyReplicas=3, conditions=_available("True"))
    stale["status"]["observedGeneration"] = 0
    assert not is_ready(stale)


def test_member_rows_join_status_and_pods_by_ordinal() -> None:
    members = [
        {"name": "example-10", "id": "a", "isLearner": True, "healthy": False},
        {"name": "example-2", "id": "b", "healthy": True, "version": "3.6.16"},
    ]
    pods = [_pod("example-2"), _pod("example-3", phase="Pending", ready=False)]
    rows = member_rows(Snapshot(cluster=_cluster(members=members), pods=pods))
    assert [(r.name, r.role, r.healthy, r.pod) for r in rows] == [
        ("example-2", "voter", "yes", "Running ready"),
        ("example-3", "-", "-", "Pending"),
        ("example-10", "learner", "no", "-"),
    ]


def test_pod_summary_shows_waiting_reasons_and_restarts() -> None:
    statuses = [
        {"name": "etcd", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    ]
    pod = _pod("example-0", ready=False, containerStatuses=statuses)
    assert pod_summary(pod) == "Running etcd:CrashLoopBackOff restarts=3"


def test_render_has_header_members_and_recent_events() -> None:
    snapshot = Snapshot(
        cluster=_cluster(
            phase="Running",
            readyReplicas=3,
            leader="example-1",
            conditions=_available("True"),
            members=[{"name": "example-0", "id": "8e9e05c52164694d", "healthy": True}],
            lastOperation={"type": "Bootstrap", "state": "Succeeded", "description": "done"},
        ),
        events=[_event(f"R{i}", f"2026-01-01T00:00:0{i}Z", str(i)) for i in range(8)],
    )
    text = "\n".join(render(snapshot))
    assert "phase Running" in text and "ready 3/3" in text and "leader example-1" in text
    assert "8e9e05c52164694d" in text
    assert "Bootstrap Succeeded: done" in text
    assert "R7" in text and "R2" not in text  # only the last few events


def test_log_mode_prints_only_changes_and_new_events() -> None:
    out = io.StringIO()
    view = LiveView(out, interactive=False, since=datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC))
    old = _event("Old", "2026-01-01T00:00:00Z", "old")
    creating = Snapshot(cluster=_cluster(phase="Creating"), events=[old], elapsed=1)
    view.update(creating)
    view.update(creating)
    new = _event("Bootstrap", "2026-01-01T00:00:09Z", "new")
    view.update(Snapshot(cluster=_cluster(phase="Running"), events=[old, new], elapsed=2))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert "phase=Creating" in lines[0]
    assert "phase=Running" in lines[1]
    assert "event Normal Bootstrap" in lines[2]
    assert "\x1b[" not in out.getvalue()


def test_terminal_mode_redraws_in_place() -> None:
    out = io.StringIO()
    view = LiveView(out, interactive=True)
    view.update(Snapshot(cluster=_cluster(phase="Creating")))
    first = out.getvalue()
    view.update(Snapshot(cluster=_cluster(phase="Running")))
    second = out.getvalue()[len(first) :]
    drawn = first.count("\n")
    assert second.startswith(f"\x1b[{drawn}F\x1b[J")
    view.close()
    assert out.getvalue().endswith("\x1b[?25h")
