"""The two services of a cluster: peer (headless: member DNS and metrics) and client."""

from __future__ import annotations

from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Service

from etcd_operator.api import EtcdCluster
from etcd_operator.naming import (
    CLIENT_PORT,
    METRICS_PORT,
    PEER_PORT,
    client_service_name,
    peer_service_name,
)
from etcd_operator.resources.labels import (
    CLIENT_SERVICE,
    PEER_SERVICE,
    cluster_labels,
    member_selector,
    owner_reference,
)


def _port(name: str, port: int) -> ServicePort:
    return ServicePort(name=name, port=port, targetPort=port, protocol="TCP")


def peer_service(cluster: EtcdCluster) -> Service:
    """Headless service `<cluster>`: gives each member pod the DNS name
    `<member>.<cluster>.<ns>.svc.<domain>` (pods set hostname and subdomain).

    `publishNotReadyAddresses` publishes names before pods are ready, which etcd
    needs: members must reach each other to form a quorum and become ready.

    It also names etcd's plaintext metrics port (`metrics`, 2381): its endpoints are every
    member, ready or not, which is what a per-member scrape needs (a member without a
    leader is unready, and is exactly the one whose `etcd_server_has_leader` matters).
    """
    return Service(
        metadata=ObjectMeta(
            name=peer_service_name(cluster.name),
            namespace=cluster.namespace,
            labels=cluster_labels(cluster, PEER_SERVICE),
            ownerReferences=[owner_reference(cluster)],
        ),
        spec=ServiceSpec(
            clusterIP="None",
            publishNotReadyAddresses=True,
            selector=member_selector(cluster),
            ports=[
                _port("peer", PEER_PORT),
                _port("client", CLIENT_PORT),
                _port("metrics", METRICS_PORT),
            ],
        ),
    )


def client_service(cluster: EtcdCluster) -> Service:
    """ClusterIP service `<cluster>-client` on 2379 for clients.

    Only ready members receive traffic; readiness (`/readyz`) leaves out learners
    and members without a quorum, which could not serve linearizable requests.
    """
    return Service(
        metadata=ObjectMeta(
            name=client_service_name(cluster.name),
            namespace=cluster.namespace,
            labels=cluster_labels(cluster, CLIENT_SERVICE),
            ownerReferences=[owner_reference(cluster)],
        ),
        spec=ServiceSpec(
            type="ClusterIP",
            selector=member_selector(cluster),
            ports=[_port("client", CLIENT_PORT)],
        ),
    )
