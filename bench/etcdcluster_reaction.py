"""How fast the operator reacts to a spec change, and what idle clusters cost the API server.

Prints three figures; asserts nothing about speed:

* spec patch -> first action: `spec.replicas` 3 -> 5 is patched a few seconds after the
  cluster reported Ready (mid-interval, as a user's change would land), and the figure is
  the time until etcd's member list shows the first new member (the learner added);
* scale-out 3 -> 5 in all: the same patch -> the cluster Ready with 5 voters;
* API writes per minute with idle in-sync clusters: N one-member clusters plus the
  five-member one, all Ready, left alone for a while; then the kube-apiserver's own request
  counters (`apiserver_request_total` on /metrics) are read before and after a 60 s window.

How writes are counted: the API server counts requests by resource and verb, not by
client, so only requests that nothing but the operator makes are summed: every write verb
(POST, PUT, PATCH, APPLY, DELETE) on services, poddisruptionbudgets (not their status,
which the disruption controller writes), etcdclusters (status included) and events, and
POST/DELETE of pods and persistentvolumeclaims (the node agent writes pod status, the
scheduler bindings). A server-side apply that changes nothing is still a request and is
counted. Other operators running against the same localcluster would be counted too: the
script lists any it finds. Needs the binaries built (`make localcluster`); brings
localcluster up if needed and runs its own operator.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import urllib.request
from collections import Counter

from _env import bench_namespace
from lightkube import AsyncClient

from harness.clusters import (
    create_cluster,
    create_ready_cluster,
    etcd_client,
    eventually,
    member_urls,
    patch_spec,
    wait_ready,
)
from harness.operator_process import running_operators
from localcluster import controlplane
from localcluster.config import StateDir

IDLE_CLUSTERS = 5
SETTLE = 20.0
WINDOW = 60.0
# Seconds between the cluster reporting Ready and the patch: the loop is mid-interval.
PATCH_AFTER_READY = 5.0

_WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
_ANY_WRITE = {"services", "poddisruptionbudgets", "etcdclusters", "events"}
_CREATE_DELETE = {"pods", "persistentvolumeclaims"}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _metrics(state: StateDir) -> str:
    ctx = ssl.create_default_context(cafile=str(state.pki / "ca.crt"))
    ctx.load_cert_chain(str(state.pki / "admin.crt"), str(state.pki / "admin.key"))
    with urllib.request.urlopen(f"{controlplane.APISERVER_URL}/metrics", context=ctx) as resp:
        return str(resp.read().decode())


def operator_writes(metrics: str) -> Counter[str]:
    """`resource[/subresource] VERB` -> requests so far, for requests only the operator makes."""
    counts: Counter[str] = Counter()
    for line in metrics.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        verb, resource, sub = labels.get("verb"), labels.get("resource"), labels.get("subresource")
        if verb not in _WRITE_VERBS:
            continue
        wanted = (resource in _ANY_WRITE and not (resource == "poddisruptionbudgets" and sub)) or (
            resource in _CREATE_DELETE and not sub and verb in ("POST", "DELETE")
        )
        if wanted:
            counts[f"{resource}{'/' + sub if sub else ''} {verb}"] += int(float(match["value"]))
    return counts


async def _reaction(kube: AsyncClient, ns: str) -> None:
    await create_ready_cluster(kube, ns, "r", {"replicas": 3})
    await asyncio.sleep(PATCH_AFTER_READY)
    start = time.monotonic()
    await patch_spec(kube, ns, "r", {"replicas": 5})
    async with etcd_client(member_urls(ns, "r", range(3))) as etcd:

        async def learner_added() -> bool:
            return len((await etcd.member_list()).members) > 3

        await eventually(learner_added, 60, "the first learner", interval=0.05)
    first = time.monotonic() - start
    await wait_ready(kube, ns, "r", 5, timeout=300)
    total = time.monotonic() - start
    print(f"spec patch -> first action (learner added): {first:5.1f}s")
    print(f"scale-out 3 -> 5 in all:                    {total:5.1f}s")


async def _idle_writes(kube: AsyncClient, ns: str, state: StateDir) -> None:
    names = [f"idle{i}" for i in range(IDLE_CLUSTERS)]
    for name in names:
        await create_cluster(kube, ns, name, {"replicas": 1})
    await asyncio.gather(*(wait_ready(kube, ns, name, 1, timeout=300) for name in names))
    await asyncio.sleep(SETTLE)
    before = operator_writes(await asyncio.to_thread(_metrics, state))
    await asyncio.sleep(WINDOW)
    after = operator_writes(await asyncio.to_thread(_metrics, state))
    delta = after - before
    per_minute = sum(delta.values()) * 60.0 / WINDOW
    clusters = IDLE_CLUSTERS + 1
    print(
        f"API writes per minute, {clusters} idle in-sync clusters"
        f" ({IDLE_CLUSTERS} x 1 member, 1 x 5 members): {per_minute:.0f}"
    )
    for key, count in sorted(delta.items()):
        print(f"    {key}: {count}")
    others = [r.name for r in running_operators(state) if r.name != "bench-operator"]
    if others:
        print(f"    (other operators were running and may be counted: {', '.join(others)})")


async def main() -> None:
    state = StateDir.default()
    async with bench_namespace() as (kube, ns):
        await _reaction(kube, ns)
        await _idle_writes(kube, ns, state)


if __name__ == "__main__":
    asyncio.run(main())
