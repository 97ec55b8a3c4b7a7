"""A live view of one EtcdCluster converging, for the demo.

On a terminal the view is a compact table redrawn in place; otherwise (pipes, CI logs)
it prints one line whenever something changes. The rendering functions are pure: they
take a ``Snapshot`` of plain Kubernetes dicts and return text.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

Obj = Mapping[str, Any]

EVENTS_SHOWN = 5
_HIDE_CURSOR = "\x1b[?25l"
_SHOW_CURSOR = "\x1b[?25h"
_CLEAR_DOWN = "\x1b[J"


@dataclass(frozen=True)
class Snapshot:
    """What one poll saw: the EtcdCluster, its member pods, and its Events."""

    cluster: Obj
    pods: Sequence[Obj] = ()
    events: Sequence[Obj] = ()
    elapsed: float = 0.0


@dataclass(frozen=True)
class MemberRow:
    name: str
    id: str
    role: str
    healthy: str
    version: str
    pod: str

    def cells(self) -> tuple[str, ...]:
        return (self.name, self.id, self.role, self.healthy, self.version, self.pod)


def _status(cluster: Obj) -> Obj:
    return cluster.get("status") or {}


def desired_replicas(cluster: Obj) -> int:
    return int((cluster.get("spec") or {}).get("replicas", 3))


def condition(cluster: Obj, kind: str) -> Obj | None:
    return next(
        (c for c in _status(cluster).get("conditions") or [] if c.get("type") == kind), None
    )


def is_ready(cluster: Obj) -> bool:
    """Running, every desired member's pod ready, Available, and the status is about
    the current spec (when the operator reports observedGeneration)."""
    status = _status(cluster)
    available = condition(cluster, "Available")
    observed = status.get("observedGeneration")
    generation = (cluster.get("metadata") or {}).get("generation")
    return (
        status.get("phase") == "Running"
        and status.get("readyReplicas") == desired_replicas(cluster)
        and available is not None
        and available.get("status") == "True"
        and (observed is None or generation is None or observed == generation)
    )


def _ordinal(name: str) -> tuple[int, str]:
    match = re.search(r"-(\d+)$", name)
    return (int(match.group(1)) if match else 1 << 30, name)


def pod_summary(pod: Obj | None) -> str:
    """`Running ready`, `Pending`, `Running CrashLoopBackOff restarts=3`, ..."""
    if pod is None:
        return "-"
    status = pod.get("status") or {}
    parts = [str(status.get("phase") or "Unknown")]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        parts.append("terminating")
    conditions = status.get("conditions") or []
    if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        parts.append("ready")
    containers = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for c in containers:
        waiting = (c.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason not in ("PodInitializing", "ContainerCreating"):
            parts.append(f"{c.get('name')}:{reason}")
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    if restarts:
        parts.append(f"restarts={restarts}")
    return " ".join(parts)


def member_rows(snapshot: Snapshot) -> list[MemberRow]:
    """One row per member the status knows or pod that exists, by ordinal."""
    members = {m.get("name"): m for m in _status(snapshot.cluster).get("members") or []}
    pods = {(p.get("metadata") or {}).get("name"): p for p in snapshot.pods}
    names = sorted({str(n) for n in [*members, *pods] if n}, key=_ordinal)
    rows = []
    for name in names:
        m = members.get(name)
        rows.append(
            MemberRow(
                name=name,
                id=str(m.get("id") or "-") if m else "-",
                role=("learner" if m.get("isLearner") else "voter") if m else "-",
                healthy=("yes" if m.get("healthy") else "no") if m else "-",
                version=str(m.get("version") or "-") if m else "-",
                pod=pod_summary(pods.get(name)),
            )
        )
    return rows


def _ready_text(cluster: Obj) -> str:
    ready = _status(cluster).get("readyReplicas")
    return f"{ready if ready is not None else 0}/{desired_replicas(cluster)}"


def _conditions_text(cluster: Obj) -> str:
    parts = []
    for kind in ("Available", "Progressing", "Degraded"):
        c = condition(cluster, kind)
        if c is not None:
            reason = f" ({c.get('reason')})" if c.get("reason") else ""
            parts.append(f"{kind}={c.get('status')}{reason}")
    return "  ".join(parts) or "-"


def _operation_text(cluster: Obj) -> str | None:
    op = _status(cluster).get("lastOperation")
    if not op:
        return None
    return f"{op.get('type')} {op.get('state')}: {op.get('description') or ''}".rstrip(": ")


def event_time(event: Obj) -> str:
    """The most precise timestamp an Event carries, as Kubernetes wrote it."""
    meta = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp") or ""
    )


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def sorted_events(events: Sequence[Obj]) -> list[Obj]:
    return sorted(events, key=event_time)


def event_key(event: Obj) -> tuple[str, int]:
    meta = event.get("metadata") or {}
    return (str(meta.get("uid") or meta.get("name") or id(event)), int(event.get("count") or 1))


def event_text(event: Obj) -> str:
    kind, reason = event.get("type") or "Normal", event.get("reason") or "?"
    return f"{kind} {reason}: {event.get('message') or ''}"


def _clock(event: Obj) -> str:
    when = _parse_time(event_time(event))
    return when.astimezone().strftime("%H:%M:%S") if when else "--:--:--"


def _table(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render(snapshot: Snapshot, title: str = "") -> list[str]:
    """The table drawn on a terminal."""
    cluster = snapshot.cluster
    meta = cluster.get("metadata") or {}
    status = _status(cluster)
    name = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
    head = (
        f"EtcdCluster {name}   phase {status.get('phase') or '-'}   "
        f"ready {_ready_text(cluster)}   leader {status.get('leader') or '-'}   "
        f"{snapshot.elapsed:.0f}s"
    )
    lines = [f"{title}{head}"]
    header = ("MEMBER", "ID", "ROLE", "HEALTHY", "VERSION", "POD")
    rows = [row.cells() for row in member_rows(snapshot)]
    lines += _table([header, *rows]) if rows else ["  (no members yet)"]
    lines.append(f"  conditions: {_conditions_text(cluster)}")
    lines.append(f"  last operation: {_operation_text(cluster) or '-'}")
    events = sorted_events(snapshot.events)[-EVENTS_SHOWN:]
    lines.append("  events:" + ("" if events else " -"))
    lines += [f"    {_clock(e)}  {event_text(e)}" for e in events]
    return lines


def summary(snapshot: Snapshot) -> str:
    """One line for logs; it changes exactly when something worth reporting does."""
    cluster = snapshot.cluster
    status = _status(cluster)
    members = ", ".join(
        f"{r.name}[{r.role} healthy={r.healthy} v={r.version} pod={r.pod}]"
        for r in member_rows(snapshot)
    )
    return (
        f"phase={status.get('phase') or '-'} ready={_ready_text(cluster)} "
        f"leader={status.get('leader') or '-'} | {members or 'no members yet'}"
    )


@dataclass
class LiveView:
    """Draws snapshots to `out`: in place when `interactive`, else as change lines."""

    out: TextIO
    interactive: bool
    since: datetime | None = None  # events before this are history: not printed as news
    title: str = ""
    _drawn: int = 0
    _last_summary: str | None = None
    _last_operation: str | None = None
    _seen_events: set[tuple[str, int]] = field(default_factory=set)

    def update(self, snapshot: Snapshot) -> None:
        if self.interactive:
            self._redraw(snapshot)
        else:
            self._log_changes(snapshot)
        self.out.flush()

    def close(self) -> None:
        """Leave the last table on screen and give the cursor back."""
        if self.interactive and self._drawn:
            self.out.write(_SHOW_CURSOR)
            self.out.flush()
        self._drawn = 0

    def _redraw(self, snapshot: Snapshot) -> None:
        size = shutil.get_terminal_size((100, 40))
        lines = render(snapshot, self.title)
        # Lines must neither wrap nor scroll off the top, or moving up would misplace
        # the cursor: cut them to the terminal's width and height.
        lines = [line[: max(size.columns - 1, 20)] for line in lines][: max(size.lines - 1, 5)]
        prefix = _HIDE_CURSOR if not self._drawn else f"\x1b[{self._drawn}F"
        self.out.write(prefix + _CLEAR_DOWN + "".join(line + "\n" for line in lines))
        self._drawn = len(lines)

    def _log_changes(self, snapshot: Snapshot) -> None:
        stamp = f"[{snapshot.elapsed:5.0f}s]"
        line = summary(snapshot)
        if line != self._last_summary:
            self._last_summary = line
            self.out.write(f"{stamp} {line}\n")
        operation = _operation_text(snapshot.cluster)
        if operation and operation != self._last_operation:
            self._last_operation = operation
            self.out.write(f"{stamp} last operation: {operation}\n")
        for event in sorted_events(snapshot.events):
            key = event_key(event)
            if key in self._seen_events:
                continue
            self._seen_events.add(key)
            when = _parse_time(event_time(event))
            if self.since is not None and when is not None and when < self.since:
                continue
            self.out.write(f"{stamp} event {event_text(event)}\n")
