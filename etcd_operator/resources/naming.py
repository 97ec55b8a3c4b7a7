"""Names, DNS names and URLs of a cluster's objects; plain strings in, strings out.

Every name the operator gives an object comes from here, so the builders, the
handlers and the planner agree on them without passing objects around.
"""

from __future__ import annotations

from collections.abc import Iterable

# One definition of names and tokens, shared with the planner (both are pure).
from etcd_operator.planner.naming import ordinal_of

CLIENT_PORT = 2379
PEER_PORT = 2380
METRICS_PORT = 2381  # plain HTTP /metrics, /health, /livez, /readyz; stays plain under TLS
DEFAULT_CLUSTER_DOMAIN = "cluster.local"


def member_ordinal(cluster: str, member: str) -> int | None:
    """`member_ordinal("c", "c-2") == 2`; None if `member` is not a member name of `c`."""
    return ordinal_of(member, cluster)


def peer_service_name(cluster: str) -> str:
    """The headless service that gives members their DNS names: the cluster's name."""
    return cluster


def client_service_name(cluster: str) -> str:
    return f"{cluster}-client"


def pvc_name(member: str) -> str:
    """The member's data claim carries the member's name, like its pod (and as the
    planner assumes: one name per member for pod, claim and etcd member)."""
    return member


def pdb_name(cluster: str) -> str:
    return cluster


def member_dns_name(
    member: str, cluster: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> str:
    """`<member>.<cluster>.<ns>.svc.<domain>`, through the peer service and pod subdomain."""
    return f"{member}.{peer_service_name(cluster)}.{namespace}.svc.{cluster_domain}"


def peer_url(
    member: str, cluster: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> str:
    return f"http://{member_dns_name(member, cluster, namespace, cluster_domain)}:{PEER_PORT}"


def client_url(
    member: str, cluster: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> str:
    return f"http://{member_dns_name(member, cluster, namespace, cluster_domain)}:{CLIENT_PORT}"


def client_endpoint(cluster: str, namespace: str) -> str:
    """What clients in the Kubernetes cluster use: `http://<cluster>-client.<ns>.svc:2379`."""
    return f"http://{client_service_name(cluster)}.{namespace}.svc:{CLIENT_PORT}"


def initial_cluster(
    cluster: str,
    namespace: str,
    members: Iterable[str],
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
) -> dict[str, str]:
    """name -> peer URL for `--initial-cluster`, e.g. for bootstrapping `c-0..c-2`."""
    return {member: peer_url(member, cluster, namespace, cluster_domain) for member in members}
