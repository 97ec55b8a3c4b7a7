"""Names, ordinals, DNS names and URLs of a cluster's members and objects; strings in,
strings out, standard library only.

Every name the operator gives an object comes from here, so the API limits, the planner, the
builders and the handlers agree on them without passing objects around. One name per member
for its pod, its claim and its etcd member: `<cluster>-<ordinal>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_REPLICAS = 9
"""The largest cluster the operator manages (etcd itself advises against more than 7 voters);
also how many member names (ordinals 0..MAX_REPLICAS-1) a cluster may use."""

CLIENT_PORT = 2379
PEER_PORT = 2380
METRICS_PORT = 2381  # plain HTTP /metrics, /health, /livez, /readyz; stays plain under TLS
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
# Where the operator reads another domain from (`etcd-operator run --cluster-domain` sets it).
CLUSTER_DOMAIN_ENV = "ETCD_OPERATOR_CLUSTER_DOMAIN"
# Where the operator runs, when in a pod (set by its Deployment): members' NetworkPolicy
# lets that pod reach the client port.
POD_NAMESPACE_ENV = "POD_NAMESPACE"
OPERATOR_POD_LABELS_ENV = "ETCD_OPERATOR_POD_LABELS"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def valid_cluster_domain(domain: str) -> bool:
    """Whether `domain` can be the Kubernetes cluster's DNS domain (`cluster.local`,
    `k8s.example.com`): lowercase DNS labels joined by dots, no trailing dot."""
    return 0 < len(domain) <= 253 and all(
        _DNS_LABEL.fullmatch(label) for label in domain.split(".")
    )


def member_name(cluster: str, ordinal: int) -> str:
    """The stable name of the member at `ordinal`: its pod, its PVC and its etcd name."""
    if ordinal < 0:
        raise ValueError(f"ordinal must be >= 0, got {ordinal}")
    return f"{cluster}-{ordinal}"


def member_names(cluster: str) -> list[str]:
    """Every name a member of `cluster` may have, by ordinal."""
    return [member_name(cluster, i) for i in range(MAX_REPLICAS)]


def ordinal_of(name: str, cluster: str | None = None) -> int | None:
    """The ordinal of a member name, or None when `name` is not `<cluster>-<n>`.

    Without `cluster` only the `-<n>` suffix is checked. Leading zeros are rejected so that
    every ordinal has exactly one name.
    """
    prefix, sep, digits = name.rpartition("-")
    if not sep or not prefix or not digits.isascii() or not digits.isdigit():
        return None
    if digits != str(int(digits)):
        return None
    if cluster is not None and prefix != cluster:
        return None
    return int(digits)


def by_ordinal(names: Iterable[str], cluster: str | None = None) -> list[str]:
    """Names sorted by ordinal (names without one, or of another `cluster`, last by name)."""

    def key(name: str) -> tuple[int, str]:
        ordinal = ordinal_of(name, cluster)
        return (ordinal if ordinal is not None else 1 << 30, name)

    return sorted(names, key=key)


def cluster_token(cluster: str, uid: str, epoch: int = 0) -> str:
    """The `--initial-cluster-token`: unique per custom resource, so that a cluster recreated
    under the same name never mistakes an old member for one of its own. `epoch`: how many
    times the same resource was bootstrapped again (an in-place rollback), so that a member of
    an earlier incarnation is never mistaken for one of the new one either."""
    if epoch == 0:
        return f"{cluster}-{uid}"
    return f"{cluster}-{uid}-{epoch}"


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


def network_policy_name(cluster: str) -> str:
    return cluster


def member_dns_name(
    member: str, cluster: str, namespace: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
) -> str:
    """`<member>.<cluster>.<ns>.svc.<domain>`, through the peer service and pod subdomain."""
    return f"{member}.{peer_service_name(cluster)}.{namespace}.svc.{cluster_domain}"


@dataclass(frozen=True, slots=True)
class MemberTLS:
    """How one member serves: TLS on its peer port, on its client port, and (while clients
    move to TLS) plaintext clients on the client port too. Callers decide it per member (from
    the spec, or from the member's registered peer URL during a switch); URLs take their
    scheme from it."""

    peer: bool = False
    client: bool = False
    client_plaintext: bool = False

    @property
    def peer_scheme(self) -> str:
        return "https" if self.peer else "http"

    @property
    def client_scheme(self) -> str:
        return "https" if self.client else "http"


PLAINTEXT = MemberTLS()


def peer_url(
    member: str,
    cluster: str,
    namespace: str,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    *,
    tls: MemberTLS = PLAINTEXT,
) -> str:
    host = member_dns_name(member, cluster, namespace, cluster_domain)
    return f"{tls.peer_scheme}://{host}:{PEER_PORT}"


def url_address(url: str) -> str:
    """`host:port` of a URL: what identifies a member's peer URL across a switch of scheme
    (http to https), during which its registered and expected URLs differ only there."""
    return url.partition("://")[2] or url


def client_url(
    member: str,
    cluster: str,
    namespace: str,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    *,
    tls: MemberTLS = PLAINTEXT,
) -> str:
    host = member_dns_name(member, cluster, namespace, cluster_domain)
    return f"{tls.client_scheme}://{host}:{CLIENT_PORT}"


def client_endpoint(cluster: str, namespace: str, *, tls: MemberTLS = PLAINTEXT) -> str:
    """What clients in the Kubernetes cluster use: `http://<cluster>-client.<ns>.svc:2379`."""
    return f"{tls.client_scheme}://{client_service_name(cluster)}.{namespace}.svc:{CLIENT_PORT}"


def initial_cluster(
    cluster: str,
    namespace: str,
    members: Iterable[str],
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    *,
    tls: MemberTLS = PLAINTEXT,
) -> dict[str, str]:
    """name -> peer URL, e.g. for `--initial-cluster` when bootstrapping `c-0..c-2`, or of
    every name (`member_names(cluster)`) for matching members to names."""
    return {
        member: peer_url(member, cluster, namespace, cluster_domain, tls=tls) for member in members
    }


def ca_secret_name(cluster: str) -> str:
    """The cluster's own CA (tls.crt, tls.key, ca.crt: the trust bundle) in `Auto` mode."""
    return f"{cluster}-ca"


def peer_tls_secret_name(cluster: str) -> str:
    """The members' certificate between each other (server and client usage), `Auto` mode."""
    return f"{cluster}-peer-tls"


def server_tls_secret_name(cluster: str) -> str:
    """The members' serving certificate on the client port, `Auto` mode."""
    return f"{cluster}-server-tls"


def client_tls_secret_name(cluster: str) -> str:
    """A client certificate applications can mount, `Auto` mode."""
    return f"{cluster}-client-tls"


def operator_tls_secret_name(cluster: str) -> str:
    """The operator's own client certificate (CN root), `Auto` mode."""
    return f"{cluster}-operator-tls"
