"""Pure builders of the Kubernetes objects an etcd cluster needs.

One module per kind of object; each returns a lightkube object ready for
server-side apply. Nothing here performs I/O.
"""

from etcd_operator.planner.naming import cluster_token as initial_cluster_token
from etcd_operator.planner.naming import member_name, quorum
from etcd_operator.resources.naming import (
    CLIENT_PORT,
    DEFAULT_CLUSTER_DOMAIN,
    METRICS_PORT,
    PEER_PORT,
    client_endpoint,
    client_service_name,
    client_url,
    initial_cluster,
    member_dns_name,
    member_ordinal,
    pdb_name,
    peer_service_name,
    peer_url,
    pvc_name,
)
from etcd_operator.resources.pdb import pod_disruption_budget
from etcd_operator.resources.pod import etcd_args, member_pod, pod_spec_hash
from etcd_operator.resources.pvc import member_pvc
from etcd_operator.resources.service import client_service, peer_service

__all__ = [
    "CLIENT_PORT",
    "DEFAULT_CLUSTER_DOMAIN",
    "METRICS_PORT",
    "PEER_PORT",
    "client_endpoint",
    "client_service",
    "client_service_name",
    "client_url",
    "etcd_args",
    "initial_cluster",
    "initial_cluster_token",
    "member_dns_name",
    "member_name",
    "member_ordinal",
    "member_pod",
    "member_pvc",
    "pdb_name",
    "peer_service",
    "peer_service_name",
    "peer_url",
    "pod_disruption_budget",
    "pod_spec_hash",
    "pvc_name",
    "quorum",
]
