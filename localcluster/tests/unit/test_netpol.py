"""The node's enforcer: which tables it writes when, and what it does without nft."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from localcluster.node import netpol
from localcluster.node.netpol import NetworkPolicies, NotEnforceable, Target

Obj = dict[str, Any]


class FakeKube:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def event(self, pod: Obj, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((pod["metadata"]["name"], reason))


def _pod(name: str, app: str, ip: str | None = None) -> Obj:
    return {
        "metadata": {"namespace": "a", "name": name, "uid": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "main"}]},
        "status": {"phase": "Running", "podIP": ip},
    }


PEERS_ONLY = {
    "metadata": {"namespace": "a", "name": "peers"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "etcd"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "etcd"}}}]}],
    },
}


def _enforcer(targets: list[Target], nft: str | None) -> tuple[NetworkPolicies, FakeKube]:
    kube = FakeKube()
    policies = NetworkPolicies(kube, lambda: targets)  # type: ignore[arg-type]
    policies.nft = nft
    policies.policies = {"a/peers": PEERS_ONLY}
    policies.namespaces = {"a": {"kubernetes.io/metadata.name": "a"}}
    for kind in ("NetworkPolicy", "Pod", "Namespace"):
        policies._listed.setdefault(kind, asyncio.Event()).set()
    return policies, kube


async def test_without_nft_a_selected_pod_is_refused_and_an_open_one_is_not() -> None:
    etcd, web = _pod("etcd-0", "etcd"), _pod("web", "web")
    policies, _ = _enforcer([], None)
    with pytest.raises(NotEnforceable, match="nft is not installed"):
        await policies.admit(Target("etcd-0", "lc-etcd", etcd))
    await policies.admit(Target("web", "lc-web", web))


async def test_without_nft_a_running_pod_a_new_policy_selects_gets_one_warning() -> None:
    target = Target("etcd-0", "lc-etcd", _pod("etcd-0", "etcd", "10.213.0.10"))
    policies, kube = _enforcer([target], None)
    await policies._enforce(target, strict=False)
    await policies._enforce(target, strict=False)
    assert kube.events == [("etcd-0", "NetworkPolicyNotEnforced")]


async def test_a_new_local_pod_is_a_source_before_the_api_has_its_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[tuple[str, str]] = []

    def apply(nft: str, netns: str, text: str) -> bool:
        applied.append((netns, text))
        return True

    monkeypatch.setattr(netpol, "_apply", apply)
    first = Target("etcd-0", "lc-etcd-0", _pod("etcd-0", "etcd", "10.213.0.10"))
    policies, _ = _enforcer([first], "/usr/sbin/nft")
    policies.pods = {"etcd-0": first.pod, "etcd-1": _pod("etcd-1", "etcd")}  # no address yet
    await policies._enforce(first, strict=False)
    assert "10.213.0.11" not in applied[-1][1]
    policies.note_local(_pod("etcd-1", "etcd"), "10.213.0.11")
    await policies._enforce(first, strict=False)
    assert "ip saddr { 10.213.0.10/32, 10.213.0.11/32 } accept" in applied[-1][1]
    count = len(applied)
    await policies._enforce(first, strict=False)
    assert len(applied) == count, "an unchanged table is not written again"
