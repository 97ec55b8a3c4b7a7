"""Cluster DNS names through hosts files, kept in sync with Services and Pods.

No DNS server: one writer process (``python -m localcluster.dns --state DIR``) computes
the records the cluster's DNS would serve and writes them as a marked block into the
host's /etc/hosts (the operator and tests run on the host) and into every pod netns's
hosts file (``ip netns exec`` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts, so the
files are rewritten in place: the bind mount pins the inode). Names:

* ``<svc>.<ns>.svc.cluster.local`` and ``<svc>.<ns>.svc``: the ClusterIP, served by the
  userspace proxy in this same process (localcluster.proxy); for headless Services the
  ready endpoints' pod IPs (all of them with publishNotReadyAddresses);
* ``<hostname>.<subdomain>.<ns>.svc.cluster.local`` (and ``.svc``) for pods whose
  subdomain names a Service in their namespace;
* ``<a-b-c-d>.<ns>.pod.cluster.local`` for every pod IP.

Inside a pod the namespace-relative forms (``<svc>``, ``<svc>.<ns>``, ``<host>.<sub>``,
``<host>.<sub>.<ns>``) resolve too, because glibc applies search domains only to DNS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, KubeConfig
from lightkube.resources.core_v1 import Namespace, Pod, Service
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.resources.networking_v1 import NetworkPolicy

from localcluster import config, hostsfile, locks, netpolicy, network
from localcluster.config import StateDir
from localcluster.paths import PodRecord, all_nodes, dns_writer_lock
from localcluster.proxy import ServiceProxy

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Records = dict[str, list[str]]  # fully qualified name -> IPs
SVC = f"svc.{config.CLUSTER_DOMAIN}"


def _pod_ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _selects(selector: dict[str, str], pod: Obj) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def compute_records(pods: Iterable[Obj], services: Iterable[Obj]) -> Records:
    """What cluster DNS would answer: ClusterIPs, and for headless Services the pods
    their selector picks (as the endpoint controller would)."""
    records: defaultdict[str, list[str]] = defaultdict(list)
    # Finished pods have given their address back; it may belong to another pod now.
    live = [
        p
        for p in pods
        if (p.get("status") or {}).get("podIP")
        and p["status"].get("phase") not in ("Succeeded", "Failed")
    ]
    by_ns: defaultdict[str, list[Obj]] = defaultdict(list)
    for pod in live:
        ns, ip = pod["metadata"]["namespace"], pod["status"]["podIP"]
        by_ns[ns].append(pod)
        records[f"{ip.replace('.', '-')}.{ns}.pod.{config.CLUSTER_DOMAIN}"].append(ip)
    for svc in services:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            continue
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            records[f"{name}.{ns}.{SVC}"].append(spec["clusterIP"])
        not_ready_ok = bool(spec.get("publishNotReadyAddresses"))
        for pod in by_ns[ns]:
            usable = not_ready_ok or (
                _pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")
            )
            if not usable:
                continue
            ip = pod["status"]["podIP"]
            if _selects(spec.get("selector") or {}, pod) and spec.get("clusterIP") == "None":
                records[f"{name}.{ns}.{SVC}"].append(ip)
            pspec = pod.get("spec") or {}
            if pspec.get("subdomain") == name and pspec.get("hostname"):
                records[f"{pspec['hostname']}.{name}.{ns}.{SVC}"].append(ip)
    return {k: sorted(set(v)) for k, v in sorted(records.items())}


def _lines(names: dict[str, list[str]]) -> list[str]:
    by_ip: defaultdict[str, list[str]] = defaultdict(list)
    for name, ips in names.items():
        for ip in ips:
            by_ip[ip].append(name)
    return [f"{ip} {' '.join(ns)}" for ip, ns in sorted(by_ip.items())]


def host_block(records: Records) -> str:
    names: dict[str, list[str]] = {}
    for fqdn, ips in records.items():
        names[fqdn] = ips
        if fqdn.endswith(f".{SVC}"):
            names[fqdn.removesuffix(f".{config.CLUSTER_DOMAIN}")] = ips
    return "\n".join([hostsfile.BEGIN, *_lines(names), hostsfile.END]) + "\n"


def pod_hosts(records: Records, record: PodRecord) -> str:
    """The hosts file of one pod: its own names, then the cluster names with short forms."""
    own = [f"{record.ip} {record.name}"]
    if record.hostname and record.subdomain:
        fqdn = f"{record.hostname}.{record.subdomain}.{record.namespace}.{SVC}"
        own = [f"{record.ip} {fqdn} {record.hostname}"]
    elif record.hostname:
        own = [f"{record.ip} {record.hostname}"]
    names: dict[str, list[str]] = {}
    suffix = f".{record.namespace}.{SVC}"
    for fqdn, ips in records.items():
        names[fqdn] = ips
        if fqdn.endswith(f".{SVC}"):
            names[fqdn.removesuffix(f".{config.CLUSTER_DOMAIN}")] = ips
        if fqdn.endswith(suffix):
            short = fqdn.removesuffix(suffix)
            names[short] = ips
            names[f"{short}.{record.namespace}"] = ips
    header = ["# Kubernetes-managed hosts file (localcluster).", "127.0.0.1 localhost"]
    header.append("::1 localhost ip6-localhost ip6-loopback")
    return "\n".join([*header, *own, *_lines(names)]) + "\n"


def pod_resolv_content(namespace: str) -> str:
    """Cluster search path; names come from the hosts file. The nameserver is the pod's
    own loopback, where nothing listens, so a name not (yet) in the hosts file fails at
    once: queries to the gateway instead meet ICMP rate limiting and take 5s each."""
    search = f"{namespace}.{SVC} {SVC} {config.CLUSTER_DOMAIN}"
    return f"search {search}\nnameserver 127.0.0.1\noptions ndots:5\n"


def records_file(state: StateDir) -> Path:
    return state.root / "dns" / "records.json"


def load_records(state: StateDir) -> Records:
    try:
        data: Records = json.loads(records_file(state).read_text())
        return data
    except (OSError, ValueError):
        return {}


def pod_hosts_content(state: StateDir, record: PodRecord) -> str:
    return pod_hosts(load_records(state), record)


def sync_once(state: StateDir, pods: list[Obj], services: list[Obj]) -> None:
    records = compute_records(pods, services)
    target = records_file(state)
    text = json.dumps(records)
    if load_records(state) != records:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    # Node names too: the API server reaches a kubelet by its Hostname address.
    nodes = {node.node: [config.GATEWAY_IP] for node in all_nodes(state)}
    hostsfile.write_host_block(host_block({**records, **nodes}))
    for node in all_nodes(state):
        for record in node.records():
            if record.netns:
                hostsfile.write_in_place(
                    network.netns_hosts_file(record.netns), pod_hosts(records, record)
                )


async def run(state: StateDir, interval: float) -> None:
    client = AsyncClient(KubeConfig.from_file(state.kubeconfig), field_manager="localcluster-dns")
    proxy = ServiceProxy()
    while True:
        try:
            pods = [p.to_dict() async for p in client.list(Pod, namespace="*")]
            services = [s.to_dict() async for s in client.list(Service, namespace="*")]
            slices = [e.to_dict() async for e in client.list(EndpointSlice, namespace="*")]
            policies = [n.to_dict() async for n in client.list(NetworkPolicy, namespace="*")]
            namespaces = {
                n.metadata.name: dict(n.metadata.labels or {})
                async for n in client.list(Namespace)
                if n.metadata and n.metadata.name
            }
            await proxy.sync(services, slices, netpolicy.Cluster(pods, policies, namespaces))
            await asyncio.to_thread(sync_once, state, pods, services)
        except Exception as e:  # keep serving the last good records
            log.warning("dns sync failed: %s", e)
        await asyncio.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localcluster.dns")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dns %(levelname)s %(message)s")
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    state = StateDir(args.state.resolve())
    lock = locks.hold(dns_writer_lock(state), wait=10)  # one writer per cluster
    if lock is None:
        log.error("another DNS writer runs for %s; exiting", state.root)
        sys.exit(75)
    asyncio.run(run(state, args.interval))


if __name__ == "__main__":
    main()
