"""NetworkPolicy ingress rules compiled for one pod, and the nftables ruleset enforcing them.

Pure: policies, pods and namespaces in (API objects as dicts), text out. The semantics are
networking.k8s.io/v1's: a pod that no policy with the Ingress type selects is open; once
one selects it, only what some rule of some selecting policy allows gets in (the union).
Sources are pod addresses (podSelector/namespaceSelector resolved to the pods that have
one now) and ipBlocks; ports are numbers, ranges (endPort) or a target container's named
ports.

The node enforces this with nftables in each pod's netns (`ruleset`); the service proxy,
which forwards ClusterIP connections from the host, asks `Cluster.admits` for each one.

Beyond the rules, the ruleset admits what most CNIs admit: replies of established
connections, loopback, and the node itself (config.GATEWAY_IP: kubelet probes, and
processes on the host such as an operator under test or the service proxy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]
TABLE = "localcluster_netpol"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True, slots=True)
class Port:
    protocol: str  # TCP, UDP or SCTP
    first: int | None  # None: every port of the protocol
    last: int | None = None


@dataclass(frozen=True, slots=True)
class Allow:
    """Connections from `sources` (CIDRs; None means anywhere) minus `excepts`, to `ports`
    (None means every port)."""

    sources: tuple[str, ...] | None
    ports: tuple[Port, ...] | None
    excepts: tuple[str, ...] = ()


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics; an empty selector selects everything."""
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _labels(obj: Obj) -> Mapping[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _has_ingress_type(policy: Obj) -> bool:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    return True if not types else "Ingress" in types


def selecting(pod: Obj, policies: Iterable[Obj]) -> list[Obj]:
    """The policies of the pod's namespace that isolate it for ingress."""
    ns = pod["metadata"]["namespace"]
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == ns
        and _has_ingress_type(p)
        and selects((p.get("spec") or {}).get("podSelector") or {}, _labels(pod))
    ]


def source_ip(pod: Obj) -> str | None:
    """A pod's address as a traffic source: running pods on the pod network only."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    ip = status.get("podIP")
    return str(ip) if ip else None


def _peer_sources(
    peer: Obj, policy_ns: str, pods: Sequence[Obj], namespaces: Mapping[str, Mapping[str, str]]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(source CIDRs, excepted CIDRs) of one NetworkPolicyPeer."""
    block = peer.get("ipBlock")
    if block is not None:
        return (str(block["cidr"]),), tuple(str(c) for c in block.get("except") or [])
    ns_selector = peer.get("namespaceSelector")
    pod_selector = peer.get("podSelector")
    found = set()
    for pod in pods:
        ns = pod["metadata"]["namespace"]
        if ns_selector is None:
            if ns != policy_ns:
                continue
        elif not selects(ns_selector, namespaces.get(ns, {"kubernetes.io/metadata.name": ns})):
            continue
        if pod_selector is not None and not selects(pod_selector, _labels(pod)):
            continue
        ip = source_ip(pod)
        if ip:
            found.add(_host(ip))
    return tuple(sorted(found)), ()


def _host(ip: str) -> str:
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def _named_ports(pod: Obj) -> dict[tuple[str, str], int]:
    spec = pod.get("spec") or {}
    found = {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            if p.get("name"):
                found[(str(p["name"]), str(p.get("protocol") or "TCP"))] = int(p["containerPort"])
    return found


def _ports(target: Obj, ports: Sequence[Obj] | None) -> tuple[Port, ...] | None:
    if not ports:
        return None
    named = _named_ports(target)
    out = []
    for p in ports:
        protocol = str(p.get("protocol") or "TCP")
        port = p.get("port")
        if port is None:
            out.append(Port(protocol, None))
        elif isinstance(port, str) and not port.isdigit():
            number = named.get((port, protocol))
            if number is not None:  # a name no container of this pod has opens nothing
                out.append(Port(protocol, number))
        else:
            end = p.get("endPort")
            out.append(Port(protocol, int(port), int(end) if end else None))
    return tuple(out)


def allowed(
    pod: Obj,
    policies: Iterable[Obj],
    pods: Sequence[Obj],
    namespaces: Mapping[str, Mapping[str, str]],
) -> tuple[Allow, ...] | None:
    """What may connect to `pod`; None when no policy isolates it (everything may)."""
    chosen = selecting(pod, policies)
    if not chosen:
        return None
    allows: list[Allow] = []
    for policy in sorted(chosen, key=lambda p: str(p["metadata"]["name"])):
        policy_ns = policy["metadata"]["namespace"]
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            ports = _ports(pod, rule.get("ports"))
            if ports == ():
                continue
            peers = rule.get("from") or []
            if not peers:
                allows.append(Allow(None, ports))
            for peer in peers:
                sources, excepts = _peer_sources(peer, policy_ns, pods, namespaces)
                if sources:
                    allows.append(Allow(sources, ports, excepts))
    return tuple(allows)


def _matches(allow: Allow, source: str, port: int, protocol: str) -> bool:
    if allow.sources is not None:
        address = ipaddress.ip_address(source)
        inside = [ipaddress.ip_network(c, strict=False) for c in allow.sources]
        outside = [ipaddress.ip_network(c, strict=False) for c in allow.excepts]
        if not any(address in net for net in inside) or any(address in net for net in outside):
            return False
    if allow.ports is None:
        return True
    return any(
        p.protocol == protocol and (p.first is None or p.first <= port <= (p.last or p.first))
        for p in allow.ports
    )


@dataclass(frozen=True)
class Cluster:
    """The objects ingress decisions read, for callers that check connections one by one."""

    pods: Sequence[Obj]
    policies: Sequence[Obj]
    namespaces: Mapping[str, Mapping[str, str]]

    def admits(self, source: str, target: str, port: int, *, node: Iterable[str] = ()) -> bool:
        """Whether a TCP connection from address `source` may reach `port` of the pod with
        address `target` (addresses in `node` are the node's own: always admitted)."""
        if source in set(node):
            return True
        pod = next((p for p in self.pods if source_ip(p) == target), None)
        if pod is None:
            return True
        allows = allowed(pod, self.policies, self.pods, self.namespaces)
        return allows is None or any(_matches(a, source, port, "TCP") for a in allows)


def ruleset(allows: tuple[Allow, ...] | None, node_ip: str) -> str:
    """`nft -f` input that replaces the table atomically (or only removes it when open)."""
    lines = [f"table inet {TABLE}", f"delete table inet {TABLE}"]
    if allows is None:
        return "\n".join(lines) + "\n"
    body = [
        "type filter hook input priority filter; policy drop;",
        "ct state established,related accept",
        'iif "lo" accept',
        f"ip saddr {node_ip} accept",
    ]
    for allow in allows:
        body.extend(_allow_lines(allow))
    lines += [f"table inet {TABLE} {{", "\tchain input {", *(f"\t\t{b}" for b in body), "\t}", "}"]
    return "\n".join(lines) + "\n"


def _set(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _allow_lines(allow: Allow) -> list[str]:
    matches: list[str] = []
    if allow.sources is None:
        matches.append("")
    else:
        for family, v6 in (("ip", False), ("ip6", True)):
            mine = [s for s in allow.sources if (":" in s) == v6]
            if not mine:
                continue
            clause = f"{family} saddr {_set(mine)}"
            excepts = [e for e in allow.excepts if (":" in e) == v6]
            if excepts:
                clause += f" {family} saddr != {_set(excepts)}"
            matches.append(clause + " ")
    if allow.ports is None:
        return [f"{m}accept" for m in matches]
    lines = []
    for protocol in sorted({p.protocol for p in allow.ports}):
        of_protocol = [p for p in allow.ports if p.protocol == protocol]
        proto = PROTOCOLS.get(protocol)
        if proto is None:
            continue
        if any(p.first is None for p in of_protocol):
            port_clause = f"meta l4proto {proto} "
        else:
            numbers = [
                str(p.first) if not p.last or p.last == p.first else f"{p.first}-{p.last}"
                for p in sorted(of_protocol, key=lambda p: (p.first or 0, p.last or 0))
            ]
            port_clause = f"{proto} dport {_set(numbers)} "
        lines += [f"{m}{port_clause}accept" for m in matches]
    return lines
