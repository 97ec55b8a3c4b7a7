"""One pod on this node: sandbox, volumes, init containers, containers, termination."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from typing import TYPE_CHECKING, Any

from localcluster import config, dns, network
from localcluster.node import container, ipam, status
from localcluster.node.containers import ContainerRun
from localcluster.node.context import NodeContext
from localcluster.node.envs import PodContext
from localcluster.node.netpol import Target
from localcluster.node.volumes import VolumeError, VolumeNotReady, prepare, remove_pod_volumes
from localcluster.paths import PodRecord

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from pathlib import Path

log = logging.getLogger(__name__)
Obj = dict[str, Any]
VOLUME_REFRESH_SECONDS = 10.0


class PodWorker:
    def __init__(self, node: NodeContext, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.paths = node.paths
        self.terminating = False
        self.finished = False  # all containers done for good (Succeeded/Failed)
        self.sandbox_ready = False
        self.initialized = False
        self.volumes: dict[str, Path] = {}
        self.pod_condition: Obj | None = None
        spec = pod["spec"]
        self.init_runs = [ContainerRun(self, c, True) for c in spec.get("initContainers") or []]
        self.runs = [ContainerRun(self, c, False) for c in spec.get("containers") or []]
        self.record = PodRecord(
            namespace=pod["metadata"]["namespace"],
            name=pod["metadata"]["name"],
            uid=self.uid,
            node=node.name,
            netns=network.netns_name(self.uid),
            veth=network.veth_name(self.uid),
            ip="",
            hostname=str(spec.get("hostname") or ""),
            subdomain=str(spec.get("subdomain") or ""),
        )
        self.ctx = PodContext(pod, "", config.GATEWAY_IP)
        self._dirty = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.start_time = ""

    @property
    def label(self) -> str:
        return f"{self.record.namespace}/{self.record.name}"

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work in the background, kept referenced until done."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def event(self, reason: str, message: str, warning: bool = False) -> None:
        await self.node.kube.event(self.pod, reason, message, warning)

    async def sleep_unless_terminating(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def update(self, pod: Obj) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and not self.terminating:
            self.terminating = True
            self._wake.set()

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._status_writer()))
        self._tasks.append(asyncio.create_task(self._main()))

    async def _main(self) -> None:
        runner: asyncio.Task[None] | None = None
        try:
            phase = (self.pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                self.finished = True  # Already done before an agent restart: never rerun.
            elif not self.terminating:
                runner = asyncio.create_task(self._run_guarded())
            await self._wake.wait()
        finally:
            await self._terminate(runner)

    async def _run_guarded(self) -> None:
        try:
            await self._run()
        except Exception as e:
            log.exception("pod %s failed", self.label)
            await self.event("Failed", f"localcluster agent error: {e}", True)

    async def _run(self) -> None:
        if not await self._sandbox_with_retries():
            return
        if not await self._volumes():
            return
        for run in self.init_runs:
            code = await run.loop()
            if self.terminating:
                return
            if code != 0:
                self.finished = True
                self.mark_dirty()
                return
        self.initialized = True
        self.mark_dirty()
        self._tasks.append(asyncio.create_task(self._refresh_volumes()))
        await asyncio.gather(*(r.loop() for r in self.runs))
        if not self.terminating:
            self.finished = True
            self.mark_dirty()
            self.node.policies.forget_local(self.uid, self.record.netns)
            await asyncio.to_thread(self._release_sandbox)

    async def _sandbox_with_retries(self) -> bool:
        delay = 1.0
        while not self.terminating:
            try:
                await self._sandbox()
                return True
            except Exception as e:
                log.warning("sandbox of %s: %s", self.label, e)
                await self.event(
                    "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}", True
                )
            await self.sleep_unless_terminating(delay)
            delay = min(delay * 2, 30.0)
        return False

    async def _sandbox(self) -> None:
        ip = await asyncio.to_thread(ipam.allocate, self.node.state, self.uid)
        self.record = PodRecord(**{**self.record.__dict__, "ip": ip})
        self.ctx = PodContext(self.pod, ip, config.GATEWAY_IP)
        hosts = dns.pod_hosts_content(self.node.state, self.record)
        resolv = dns.pod_resolv_content(self.record.namespace)
        await asyncio.to_thread(
            network.create_pod_netns, self.record.netns, self.record.veth, ip, hosts, resolv
        )
        self.paths.write_record(self.record)
        # Before any container runs: the pod's own table, and its address as a source.
        self.node.policies.note_local(self.pod, ip)
        await self.node.policies.admit(Target(self.uid, self.record.netns, self.pod))
        self.start_time = status.now()
        self.sandbox_ready = True
        self.mark_dirty()

    async def _volumes(self) -> bool:
        while not self.terminating:
            try:
                self.volumes = await prepare(self.ctx, self.node.kube, self.paths)
                self.pod_condition = None
                return True
            except VolumeNotReady as e:
                await self.event("FailedMount", f"MountVolume.SetUp failed: {e}", True)
            except VolumeError as e:
                self.pod_condition = {"reason": "UnsupportedVolume", "message": str(e)}
                await self.event("FailedMount", f"Unable to attach or mount volumes: {e}", True)
            except Exception as e:  # API errors (e.g. a token request refused): retry
                log.warning("volumes of %s: %s", self.label, e)
                await self.event("FailedMount", f"MountVolume.SetUp failed: {e}", True)
            self.mark_dirty()
            await self.sleep_unless_terminating(2.0)
        return False

    async def _refresh_volumes(self) -> None:
        # Like a kubelet, propagate Secret/ConfigMap/token updates into running pods.
        while not self.terminating:
            await self.sleep_unless_terminating(VOLUME_REFRESH_SECONDS)
            with contextlib.suppress(Exception):
                await prepare(self.ctx, self.node.kube, self.paths, rendered_only=True)

    async def _status_writer(self) -> None:
        last: Obj | None = None
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.2)  # coalesce bursts of changes into one patch
            self._dirty.clear()
            body = status.pod_status(self)
            if body == last:
                continue
            try:
                await self.node.kube.patch_pod_status(self.pod, body)
                last = body
            except Exception as e:
                log.warning("status of %s: %s", self.label, e)
                await asyncio.sleep(1)
                self._dirty.set()

    async def _terminate(self, runner: asyncio.Task[None] | None) -> None:
        """Graceful stop: preStop, SIGTERM, grace period, SIGKILL; then clean up."""
        meta, spec = self.pod["metadata"], self.pod["spec"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        try:
            running = [
                r for r in self.init_runs + self.runs if r.proc and r.proc.returncode is None
            ]
            for run in running:
                await self.event("Killing", f"Stopping container {run.name}")
            await asyncio.gather(*(self._stop_run(r, float(grace)) for r in running))
            for task in [*self._tasks, runner]:
                if task is not None and task is not asyncio.current_task():
                    task.cancel()
            # Also kills anything that was starting up meanwhile: it lives in the netns.
            self.node.policies.forget_local(self.uid, self.record.netns)
            await asyncio.to_thread(self._release_sandbox)
            await asyncio.to_thread(remove_pod_volumes, self.paths, self.uid)
            await self.node.kube.delete_pod_now(self.pod)
        except Exception as e:
            log.exception("cleaning up pod %s", self.label)
            await self.event("FailedKillPod", f"error cleaning up the pod: {e}", True)
        finally:
            await asyncio.to_thread(shutil.rmtree, self.paths.pod_dir(self.uid), True)
            self.node.forget(self.uid)

    async def _stop_run(self, run: ContainerRun, grace: float) -> None:
        assert run.proc is not None
        hook = ((run.spec.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        if hook and grace > 0:
            with contextlib.suppress(Exception):
                await run.exec(list(hook.get("command") or []), grace)
        await container.stop(run.proc, grace)

    def _release_sandbox(self) -> None:
        network.delete_pod_netns(self.record.netns, self.record.veth)
        ipam.release(self.node.state, self.uid)

    def kill_now(self) -> None:
        """The pod vanished from the API (force delete): no grace."""
        self.pod["metadata"]["deletionGracePeriodSeconds"] = 0
        self.update({**self.pod, "metadata": {**self.pod["metadata"], "deletionTimestamp": "now"}})
