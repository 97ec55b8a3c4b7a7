"""The life of one container: image, start, probes, exit, restart with back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any, Protocol

from localcluster import images
from localcluster.node import container, probes, security
from localcluster.node.context import NodeContext
from localcluster.node.envs import ConfigError, PodContext, build_env, expand
from localcluster.node.kube import now
from localcluster.node.volumes import VolumeError, check_not_hidden, mounts_for
from localcluster.paths import NodePaths, PodRecord

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class PodHandle(Protocol):
    """What a container sees of its pod (the pod's worker, pod.py)."""

    node: NodeContext
    pod: Obj
    uid: str
    paths: NodePaths
    record: PodRecord
    ctx: PodContext
    volumes: dict[str, Path]
    terminating: bool

    def mark_dirty(self) -> None: ...

    async def event(self, reason: str, message: str, warning: bool = False) -> None: ...

    async def sleep_unless_terminating(self, seconds: float) -> None: ...


def _searchable_by_others(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat.S_IXOTH)
    except OSError:
        return True  # a missing directory hides nothing


# As a kubelet: the message is at most 4096 bytes; from the log, at most 80 lines / 2048 bytes.
MAX_MESSAGE = 4096
MAX_LOG_LINES = 80
MAX_LOG_BYTES = 2048


def _termination_path(spec: Obj) -> str:
    return str(spec.get("terminationMessagePath") or "/dev/termination-log")


def _termination_message(spec: Obj, code: int, message_file: Path, log_file: Path) -> str:
    """What a kubelet reports as `state.terminated.message`: the file the container wrote,
    or (FallbackToLogsOnError, after a failure, with an empty file) the tail of its log."""
    try:
        with message_file.open("rb") as f:
            text = f.read(MAX_MESSAGE).decode(errors="replace")
    except OSError:
        text = ""
    if text or code == 0 or spec.get("terminationMessagePolicy") != "FallbackToLogsOnError":
        return text
    try:
        lines = log_file.read_bytes()[-64 * 1024 :].decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-MAX_LOG_LINES:])[-MAX_LOG_BYTES:]


def hidden_image_files(image: images.LocalImage) -> dict[str, tuple[str, ...]]:
    return security.hidden_roots(image.files, _searchable_by_others)


class ContainerRun:
    def __init__(self, worker: PodHandle, spec: Obj, is_init: bool) -> None:
        self.worker = worker
        self.spec = spec
        self.name: str = spec["name"]
        self.is_init = is_init
        self.restart_count = 0
        self.state: Obj = {
            "waiting": {"reason": "PodInitializing" if is_init else "ContainerCreating"}
        }
        self.last_state: Obj = {}
        self.ready = False
        self.started: bool | None = None
        self.image_id = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.env: dict[str, str] = {}
        self.identity = security.Identity()
        self.backoffs = 0

    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": self.image_id,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
            "started": bool(self.started),
        }
        if self.proc is not None:
            out["containerID"] = f"local://{self.proc.pid}"
        return out

    def _set(self, state: Obj, ready: bool = False) -> None:
        # As a kubelet reports it: lastState is the termination before the current state, kept
        # once the container waits or runs again (a successful retry does not erase a failure).
        if "terminated" not in state:
            self._keep_last_termination()
        self.state, self.ready = state, ready

    def _keep_last_termination(self) -> None:
        if "terminated" in self.state:
            self.last_state = {"terminated": self.state["terminated"]}
        self.worker.mark_dirty()

    async def loop(self) -> int:
        """Run until the container should no longer restart; returns the last exit code."""
        policy = self.worker.pod["spec"].get("restartPolicy") or "Always"
        if self.is_init and policy == "Always":
            policy = "OnFailure"
        while True:
            if self.worker.terminating:
                return 137
            started_at = time.monotonic()
            code = await self.run_once()
            if self.worker.terminating:
                return code if code is not None else 137
            if code is not None:
                if policy == "Never" or (policy == "OnFailure" and code == 0):
                    return code
                self.restart_count += 1
                self._keep_last_termination()
                if time.monotonic() - started_at > 2 * self.worker.node.backoff_cap:
                    self.backoffs = 0
            await self._back_off("CrashLoopBackOff" if code is not None else None)

    async def _back_off(self, reason: str | None) -> None:
        # Like a kubelet: the first restart is immediate, then 10s, 20s, ... up to the cap.
        node = self.worker.node
        delay = 0.0 if self.backoffs == 0 else node.backoff_base * 2 ** (self.backoffs - 1)
        delay = min(delay, node.backoff_cap)
        self.backoffs += 1
        if reason and delay > 0:
            msg = f"back-off {delay:.0f}s restarting failed container={self.name}"
            self._set({"waiting": {"reason": reason, "message": msg}})
            await self.worker.event(
                "BackOff", f"Back-off restarting failed container {self.name}", True
            )
        await self.worker.sleep_unless_terminating(max(delay, 0.5))

    async def run_once(self) -> int | None:
        """One start of the container; None when it could not be started."""
        w = self.worker
        image_name = self.spec.get("image", "")
        try:
            image = images.resolve_image(image_name, w.node.etcd_lookup)
        except images.ImageNotFound as e:
            reason = "ErrImagePull" if self.backoffs == 0 else "ImagePullBackOff"
            self._set({"waiting": {"reason": reason, "message": str(e)}})
            await w.event("Failed", f"Failed to pull image {image_name!r}: {e}", True)
            return None
        self.image_id = image.image_id
        try:
            env = await build_env(
                w.ctx, self.spec, w.node.kube.data, {"PATH": image.path_env, **w.node.service_env}
            )
            command = [expand(a, env) for a in self.spec.get("command") or []]
            args = self.spec.get("args")
            argv = images.container_argv(
                image, command, None if args is None else [expand(a, env) for a in args]
            )
            mounts = mounts_for(self.spec, w.volumes)
            check_not_hidden(mounts, (*image.bin_dirs, w.paths.root))
            identity = security.identity(w.pod, self.spec)
        except (ConfigError, VolumeError, images.ImageNotFound) as e:
            self._set({"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}})
            await w.event("Failed", f"Error: {e}", True)
            return None
        if self.restart_count == 0 and self.backoffs == 0:
            await w.event("Pulled", f'Container image "{image_name}" already present on machine')
        self.env, self.identity = env, identity
        message_file = self._termination_file(identity)
        mounts.append((message_file, _termination_path(self.spec), False))
        current = w.paths.log_file(w.record, self.name)
        if current.exists() and current.stat().st_size:
            current.replace(w.paths.log_file(w.record, self.name, previous=True))
        launch = container.Launch(
            argv=argv,
            env=env,
            netns=w.record.netns,
            mounts=mounts,
            workdir=self.spec.get("workingDir"),
            hostname=w.ctx.hostname,
            log_file=current,
            pid_file=w.paths.pid_file(w.uid, self.name),
            identity=identity,
            # Only an unprivileged user needs the image shown where the host hides it.
            image_view={} if identity.uid == security.ROOT else hidden_image_files(image),
            scratch=w.paths.image_scratch,
        )
        try:
            self.proc = await container.start(launch)
        except OSError as e:
            self._set({"waiting": {"reason": "RunContainerError", "message": str(e)}})
            await w.event("Failed", f"Error: {e}", True)
            return None
        started = now()
        self.started = not self.spec.get("startupProbe")
        self._set({"running": {"startedAt": started}}, ready=self._ready_without_probe())
        await w.event("Created", f"Created container {self.name}")
        await w.event("Started", f"Started container {self.name}")
        probing = asyncio.create_task(self._probes())
        try:
            returncode = await self.proc.wait()
        finally:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
        code = container.exit_code(returncode)
        w.paths.pid_file(w.uid, self.name).unlink(missing_ok=True)
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now(),
            "containerID": f"local://{self.proc.pid}",
        }
        message = _termination_message(self.spec, code, message_file, current)
        if message:
            terminated["message"] = message
        self.started = False
        self._set({"terminated": terminated})
        return code

    def _termination_file(self, identity: security.Identity) -> Path:
        """A fresh, empty file the container (as its user) may write its message to."""
        path = self.worker.paths.termination_file(self.worker.uid, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.chown(path, identity.uid, identity.gid)
        path.chmod(0o660)
        return path

    def _ready_without_probe(self) -> bool:
        return not self.is_init and not self.spec.get("readinessProbe") and bool(self.started)

    async def exec(self, argv: list[str], limit: float) -> tuple[int, str]:
        if self.proc is None or self.proc.returncode is not None:
            return -1, "container is not running"
        resolved = (
            [
                images.resolve_image(
                    self.spec.get("image", ""), self.worker.node.etcd_lookup
                ).resolve(argv[0]),
                *argv[1:],
            ]
            if argv
            else argv
        )
        return await container.exec_in(self.proc.pid, resolved, self.env, limit, self.identity)

    async def _probes(self) -> None:
        startup = self.spec.get("startupProbe")
        if startup and not await self._probe_loop("Startup", startup):
            return
        self.started = True
        self._set(self.state, ready=self._ready_without_probe())
        tasks = [
            asyncio.create_task(self._probe_loop(kind, spec))
            for kind, spec in (
                ("Liveness", self.spec.get("livenessProbe")),
                ("Readiness", self.spec.get("readinessProbe")),
            )
            if spec and not self.is_init
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _probe_loop(self, kind: str, probe: Obj) -> bool:
        """Startup: returns True once it succeeds. Liveness/Readiness: run until cancelled."""
        period = float(probe.get("periodSeconds") or 10)
        failures_allowed = int(probe.get("failureThreshold") or 3)
        successes_needed = int(probe.get("successThreshold") or 1)
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        failures = successes = 0
        while True:
            ok, message = await probes.probe_once(
                probe, self.spec, self.worker.record.ip, self.exec
            )
            failures, successes = (0, successes + 1) if ok else (failures + 1, 0)
            if kind == "Startup" and ok:
                return True
            if kind == "Readiness":
                if ok and successes >= successes_needed and not self.ready:
                    self._set(self.state, ready=True)
                elif not ok and failures >= failures_allowed and self.ready:
                    self._set(self.state, ready=False)
            if not ok:
                await self.worker.event("Unhealthy", f"{kind} probe failed: {message}", True)
            if kind != "Readiness" and failures >= failures_allowed:
                action = "failed startup probe" if kind == "Startup" else "failed liveness probe"
                await self.worker.event(
                    "Killing", f"Container {self.name} {action}, will be restarted"
                )
                if self.proc is not None:
                    grace = float(
                        self.worker.pod["spec"].get("terminationGracePeriodSeconds") or 30
                    )
                    asyncio.get_running_loop().create_task(container.stop(self.proc, grace))
                return False
            await asyncio.sleep(period)
