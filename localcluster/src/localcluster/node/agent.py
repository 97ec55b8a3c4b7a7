"""The node agent: registers the Node and runs the Pods bound to it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

from lightkube.resources.core_v1 import Pod

from localcluster import images, network
from localcluster.config import StateDir
from localcluster.node import container, ipam, kubeletapi
from localcluster.node.context import NodeContext
from localcluster.node.heartbeat import Heartbeat
from localcluster.node.kube import Kube
from localcluster.node.netpol import NetworkPolicies, Target
from localcluster.node.pod import PodWorker
from localcluster.paths import NodePaths

log = logging.getLogger(__name__)
Obj = dict[str, Any]
RELIST_SECONDS = 30.0


class Agent:
    def __init__(
        self,
        state: StateDir,
        *,
        name: str,
        etcd_dirs: dict[str, Path],
        backoff_base: float = 10.0,
        backoff_cap: float = 300.0,
        cpu: str = "16",
        max_pods: int = 110,
        kubelet_port: int = kubeletapi.BASE_PORT,
    ) -> None:
        self.state, self.name = state, name
        self.paths = NodePaths(state, name)
        self.kube = Kube(str(state.kubeconfig), name)
        self.etcd_dirs = etcd_dirs
        self.heartbeat = Heartbeat(self.kube, self.paths, cpu, max_pods, kubelet_port)
        self.kubelet_port = kubelet_port
        self.workers: dict[str, PodWorker] = {}
        self.policies = NetworkPolicies(self.kube, self._policy_targets)
        self.node = NodeContext(
            state=state,
            name=name,
            paths=self.paths,
            kube=self.kube,
            policies=self.policies,
            etcd_lookup=self.etcd_lookup,
            forget=self.forget,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
        )
        self._kubelet_server: asyncio.Server | None = None

    def etcd_lookup(self, version: str) -> Path | None:
        if version in self.etcd_dirs:
            return self.etcd_dirs[version]
        try:
            return images._default_etcd_lookup(version)
        except (ImportError, AttributeError):
            return None

    def _worker_named(self, namespace: str, name: str) -> PodWorker | None:
        for worker in self.workers.values():
            if worker.record.namespace == namespace and worker.record.name == name:
                return worker
        return None

    def _find_log(self, namespace: str, pod: str, container: str, previous: bool) -> Path | None:
        worker = self._worker_named(namespace, pod)
        return None if worker is None else self.paths.log_file(worker.record, container, previous)

    def _policy_targets(self) -> list[Target]:
        return [
            Target(w.uid, w.record.netns, w.pod)
            for w in self.workers.values()
            if w.sandbox_ready and not w.finished and w.record.ip
        ]

    def forget(self, uid: str) -> None:
        self.workers.pop(uid, None)

    async def run(self) -> None:
        await asyncio.to_thread(self._clean_previous_run)
        api = kubeletapi.KubeletAPI(
            self._find_log, lambda ns, name: self._worker_named(ns, name) is not None
        )
        tls = await asyncio.to_thread(kubeletapi.serving_context, self.paths.root, self.name)
        try:
            self._kubelet_server = await api.serve(self.kubelet_port, tls)
        except OSError as e:  # logs via the API are a convenience: run without them
            log.warning("kubelet API on port %s unavailable: %s", self.kubelet_port, e)
        await self.heartbeat.register()
        try:
            self.node.service_env.update(await self.kube.kubernetes_service_env())
        except Exception as e:  # pods then fall back to the gateway address
            log.warning("no kubernetes Service env: %s", e)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.image_scratch.mkdir(exist_ok=True)
        self.paths.registered.write_text(self.heartbeat.version)
        log.info("node %s registered (kubelet version %s)", self.name, self.heartbeat.version)
        beat = asyncio.create_task(self.heartbeat.run())
        try:
            await asyncio.gather(self._watch(), self._relist(), self.policies.run())
        finally:
            beat.cancel()

    def _clean_previous_run(self) -> None:
        """Processes of a previous agent are not adopted: stop them; pods start afresh."""
        for record in self.paths.records():
            for pid_file in (self.paths.pod_dir(record.uid) / "pids").glob("*"):
                with contextlib.suppress(ValueError, OSError):
                    container.kill_group(int(pid_file.read_text()))
            network.delete_pod_netns(record.netns, record.veth)
            ipam.release(self.state, record.uid)
            shutil.rmtree(self.paths.pod_dir(record.uid), ignore_errors=True)

    def _dispatch(self, op: str, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if op == "DELETED":
            if worker is not None:
                worker.kill_now()
            return
        if worker is None:
            worker = PodWorker(self.node, pod)
            self.workers[uid] = worker
            worker.update(pod)
            worker.start()
            log.info("pod %s/%s admitted", pod["metadata"]["namespace"], pod["metadata"]["name"])
        else:
            worker.update(pod)

    async def _watch(self) -> None:
        fields: dict[str, Any] = {"spec.nodeName": self.name}
        while True:
            try:
                async for op, obj in self.kube.client.watch(
                    Pod, namespace="*", fields=fields, server_timeout=60
                ):
                    try:
                        self._dispatch(op, obj.to_dict())
                    except Exception:
                        log.exception("dispatching pod event failed")
            except Exception as e:
                log.warning("pod watch failed, restarting: %s", e)
                await asyncio.sleep(1)

    async def _relist(self) -> None:
        """Catch what a broken watch missed: pods gone from the API are stopped."""
        while True:
            await asyncio.sleep(RELIST_SECONDS)
            try:
                present = set()
                async for obj in self.kube.client.list(
                    Pod, namespace="*", fields={"spec.nodeName": self.name}
                ):
                    pod = obj.to_dict()
                    present.add(pod["metadata"]["uid"])
                    self._dispatch("MODIFIED", pod)
                for uid, worker in list(self.workers.items()):
                    if uid not in present:
                        worker.kill_now()
            except Exception as e:
                log.warning("relist failed: %s", e)
