"""The node's NetworkPolicy enforcement: one nftables table inside each pod's network namespace.

The agent keeps the cluster's NetworkPolicies, Pods and Namespaces in memory (list, then
watch from the list's version) and, on every change, recompiles the ingress rules of the
pods on this node (localcluster.netpolicy) and replaces the table of each pod whose rules
changed, atomically (`nft -f` inside the pod's netns). A pod's own table is in place before its
containers start (`admit`), and the address of a pod this node just gave one counts as a
source at once (`note_local`), before its status reaches the API: same-node peers of a
new etcd member admit it within one sync, other nodes once the status is written.

Without `nft` nothing can be enforced: pods that a policy selects are refused (their
sandbox fails with a message that says so), and running pods that a new policy selects get
a Warning Event, never a silent open door.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lightkube.resources.core_v1 import Namespace, Pod
from lightkube.resources.networking_v1 import NetworkPolicy

from localcluster import config, hosttools, netpolicy
from localcluster.node.kube import Kube

log = logging.getLogger(__name__)
Obj = dict[str, Any]
DEBOUNCE_SECONDS = 0.02
READY_TIMEOUT = 30.0


class NotEnforceable(Exception):
    """A policy selects the pod, but this node cannot enforce it."""


@dataclass(frozen=True)
class Target:
    """A pod of this node with a network namespace, as the enforcer needs it."""

    uid: str
    netns: str
    pod: Obj  # the pod as last seen, with status.podIP set to its address


def _slim(obj: Obj) -> Obj:
    """What the rules read of a pod: less to keep for every pod of the cluster."""
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "labels")},
        "spec": {k: spec.get(k) for k in ("hostNetwork", "containers", "initContainers")},
        "status": {k: status.get(k) for k in ("phase", "podIP")},
    }


class NetworkPolicies:
    def __init__(self, kube: Kube, targets: Callable[[], Iterable[Target]]) -> None:
        self.kube = kube
        self.targets = targets
        self.nft = hosttools.nft_path()
        self.policies: dict[str, Obj] = {}
        self.pods: dict[str, Obj] = {}
        self.namespaces: dict[str, dict[str, str]] = {}
        self.local: dict[str, Obj] = {}  # uid -> pod with the address this node gave it
        self.applied: dict[str, str] = {}  # netns -> ruleset text in place
        self.warned: set[str] = set()  # uids told by an Event that they are not protected
        self._listed: dict[str, asyncio.Event] = {}
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        if self.nft is None:
            log.error(
                "nft is not installed: NetworkPolicies cannot be enforced on this node; pods "
                "they select will not start (install nftables: python -m localcluster build)"
            )
        await asyncio.gather(
            self._follow(NetworkPolicy, self._on_policy),
            self._follow(Pod, self._on_pod),
            self._follow(Namespace, self._on_namespace),
            self._sync_loop(),
        )

    # -- the cluster's state -------------------------------------------------------------

    def _on_policy(self, op: str, obj: Obj) -> None:
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        if op == "DELETED":
            self.policies.pop(key, None)
        else:
            self.policies[key] = obj

    def _on_pod(self, op: str, obj: Obj) -> None:
        uid = obj["metadata"]["uid"]
        if op == "DELETED":
            self.pods.pop(uid, None)
        else:
            self.pods[uid] = _slim(obj)

    def _on_namespace(self, op: str, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if op == "DELETED":
            self.namespaces.pop(name, None)
        else:
            self.namespaces[name] = dict(obj["metadata"].get("labels") or {})

    async def _follow(self, kind: Any, on: Callable[[str, Obj], None]) -> None:
        """List (replacing what is known), then watch from the list's version; again after
        any failure, so a missed deletion cannot linger."""
        listed = self._listed.setdefault(kind.__name__, asyncio.Event())
        client: Any = self.kube.client  # one call for global and namespaced kinds
        ns_arg: dict[str, str] = {} if kind is Namespace else {"namespace": "*"}
        while True:
            try:
                items = client.list(kind, **ns_arg)
                fresh: list[Obj] = [obj.to_dict() async for obj in items]
                self._replace(kind, fresh, on)
                listed.set()
                self._dirty.set()
                async for op, obj in client.watch(
                    kind, **ns_arg, resource_version=items.resourceVersion, server_timeout=300
                ):
                    on(op, obj.to_dict())
                    self._dirty.set()
            except Exception as e:
                log.warning("%s watch failed, listing again: %s", kind.__name__, e)
                await asyncio.sleep(1)

    def _replace(self, kind: Any, fresh: list[Obj], on: Callable[[str, Obj], None]) -> None:
        if kind is NetworkPolicy:
            self.policies.clear()
        elif kind is Pod:
            self.pods.clear()
        else:
            self.namespaces.clear()
        for obj in fresh:
            on("ADDED", obj)

    def _sources(self) -> list[Obj]:
        pods = dict(self.pods)
        for uid, pod in self.local.items():
            if not (pods.get(uid, {}).get("status") or {}).get("podIP"):
                pods[uid] = pod
        return list(pods.values())

    def note_local(self, pod: Obj, ip: str) -> None:
        """This node gave `pod` the address `ip`: a source from now on."""
        slim = _slim(pod)
        slim["status"] = {**slim["status"], "podIP": ip, "phase": "Pending"}
        self.local[pod["metadata"]["uid"]] = slim
        self._dirty.set()

    def forget_local(self, uid: str, netns: str) -> None:
        self.local.pop(uid, None)
        self.applied.pop(netns, None)
        self.warned.discard(uid)
        self._dirty.set()

    # -- enforcement ---------------------------------------------------------------------

    async def _ready(self) -> None:
        kinds = ("NetworkPolicy", "Pod", "Namespace")
        events = [self._listed.setdefault(k, asyncio.Event()) for k in kinds]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), READY_TIMEOUT)

    def _ruleset(self, target: Target) -> tuple[str, bool]:
        """The table for the target, and whether some policy isolates it."""
        # The watch may know the pod's labels before the agent's own copy does.
        pod = self.pods.get(target.uid) or target.pod
        allows = netpolicy.allowed(pod, self.policies.values(), self._sources(), self.namespaces)
        return netpolicy.ruleset(allows, config.GATEWAY_IP), allows is not None

    async def admit(self, target: Target) -> None:
        """Put the pod's table in place before its containers start; refuse the pod when a
        policy selects it and this node cannot enforce it."""
        try:
            await self._ready()
        except TimeoutError as e:
            raise NotEnforceable("the NetworkPolicies of the cluster are not known yet") from e
        async with self._lock:
            self.applied.pop(target.netns, None)  # a new namespace: nothing in place yet
            await self._enforce(target, strict=True)

    async def _sync_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(DEBOUNCE_SECONDS)
            self._dirty.clear()
            async with self._lock:
                for target in list(self.targets()):
                    try:
                        await self._enforce(target, strict=False)
                    except Exception as e:
                        log.warning("network policy of %s: %s", target.netns, e)
                        self._dirty.set()  # try again
            if self._dirty.is_set():
                await asyncio.sleep(1)

    async def _enforce(self, target: Target, *, strict: bool) -> None:
        text, isolated = self._ruleset(target)
        if self.applied.get(target.netns) == text:
            return
        if self.nft is None:
            if not isolated:
                return
            message = "a NetworkPolicy selects this pod but nft is not installed on the node"
            if strict:
                raise NotEnforceable(message)
            if target.uid not in self.warned:
                self.warned.add(target.uid)
                log.error("%s/%s: %s", target.pod["metadata"]["namespace"],
                          target.pod["metadata"]["name"], message)  # fmt: skip
                await self.kube.event(target.pod, "NetworkPolicyNotEnforced", message, True)
            return
        if await asyncio.to_thread(_apply, self.nft, target.netns, text):
            self.applied[target.netns] = text


def _apply(nft: str, netns: str, text: str) -> bool:
    """Replace the table in the namespace; False when the namespace is gone (the pod's
    sandbox is being released)."""
    if not os.path.exists(f"/run/netns/{netns}"):
        return False
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, nft, "-f", "-"],
        input=text, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"nft in {netns}: {proc.stderr.strip()[-300:]}")
    return True
