"""What the shell reads off pods and claims: the facts the planner decides on."""

from __future__ import annotations

from typing import Any

from lightkube.models.core_v1 import (
    ContainerState,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    PodStatus,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod

from etcd_operator.etcd import TLSConfig
from etcd_operator.handlers.access import EtcdAccess
from etcd_operator.handlers.observe import EtcdSession, _claim, _pod_state, _reachable
from etcd_operator.naming import MemberTLS
from etcd_operator.planner import PvcState


def _terminated(code: int) -> ContainerState:
    return ContainerState(terminated=ContainerStateTerminated(exitCode=code))


def _pod(init_state: ContainerState, last: ContainerState | None = None) -> Pod:
    init = ContainerStatus(
        name="member-init",
        image="op",
        imageID="",
        ready=False,
        restartCount=1,
        state=init_state,
        lastState=last,
    )
    return Pod(metadata=ObjectMeta(name="demo-0"), status=PodStatus(initContainerStatuses=[init]))


def test_a_refusal_counts_while_member_init_exits_or_waits_to_retry_after_it() -> None:
    assert _pod_state(_pod(_terminated(43))).data_lost
    assert _pod_state(_pod(_terminated(42))).data_lost
    backoff = ContainerState(waiting=ContainerStateWaiting(reason="CrashLoopBackOff"))
    assert _pod_state(_pod(backoff, last=_terminated(43))).data_lost


def test_an_old_refusal_does_not_mark_a_pod_whose_member_init_then_succeeded() -> None:
    assert not _pod_state(_pod(_terminated(0), last=_terminated(43))).data_lost
    assert not _pod_state(_pod(_terminated(1))).data_lost


def _pvc(
    labels: dict[str, str], annotations: dict[str, Any] | None = None
) -> PersistentVolumeClaim:
    meta = ObjectMeta(name="demo-0-1", labels=labels, annotations=annotations)
    return PersistentVolumeClaim(metadata=meta)


def test_claim_records_are_read_back() -> None:
    member, state = _claim(
        _pvc(
            {"etcd.operator.io/member": "demo-0", "etcd.operator.io/cluster-uid": "u"},
            {"etcd.operator.io/member-id": "8e9e05c52164694d", "etcd.operator.io/retired": "true"},
        )
    )
    assert member == "demo-0"
    assert state == PvcState(
        bound=False, claim="demo-0-1", cluster_uid="u", member_id=0x8E9E05C52164694D, retired=True
    )


def test_a_claim_without_records_or_with_a_garbled_one_has_no_facts() -> None:
    _, state = _claim(_pvc({}, {"etcd.operator.io/member-id": "not-hex"}))
    assert (state.cluster_uid, state.member_id, state.retired) == (None, None, False)


async def test_the_etcd_client_is_kept_until_the_member_pods_change() -> None:
    session = EtcdSession()
    urls = ["http://demo-0.demo.ns.svc.cluster.local:2379"]
    first = await session.client(urls, ["uid-a"])
    assert await session.client(urls, ["uid-a"]) is first, "reused across rounds"
    recreated = await session.client(urls, ["uid-b"])
    assert recreated is not first, "a pod recreated under its name may have another address"
    grown = await session.client(
        [*urls, "http://demo-1.demo.ns.svc.cluster.local:2379"], ["uid-b", "uid-c"]
    )
    assert grown is not recreated and grown.config.endpoints[1].startswith("http://demo-1.")
    await session.close()


def test_the_operator_speaks_plaintext_to_members_until_every_pod_serves_tls() -> None:
    """While a cluster switches to TLS some pods serve plaintext clients only, all of them
    still serve plaintext; once every pod serves TLS the operator uses its certificate."""
    wanted = EtcdAccess(MemberTLS(peer=True, client=True), TLSConfig(ca_cert=b"ca"))
    mixed = _reachable(wanted, [MemberTLS(), MemberTLS(client=True, client_plaintext=True)])
    assert mixed.tls is None and not mixed.member_tls.client and mixed.member_tls.peer
    assert mixed.config(["http://demo-0.demo.ns.svc:2379"]).tls is None
    done = [MemberTLS(peer=True, client=True)] * 2
    assert _reachable(wanted, done) is wanted
