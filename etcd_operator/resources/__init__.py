"""Pure builders of the Kubernetes objects an etcd cluster needs.

One module per kind of object; each returns a lightkube object ready for
server-side apply. Nothing here performs I/O.
"""

from etcd_operator.resources.pdb import pod_disruption_budget
from etcd_operator.resources.pod import (
    etcd_args,
    member_pod,
    pod_outdated,
    pod_spec_hash,
    template_hash,
    trust_outdated,
)
from etcd_operator.resources.pvc import member_pvc
from etcd_operator.resources.service import client_service, peer_service

__all__ = [
    "client_service",
    "etcd_args",
    "member_pod",
    "member_pvc",
    "peer_service",
    "pod_disruption_budget",
    "pod_outdated",
    "pod_spec_hash",
    "template_hash",
    "trust_outdated",
]
