"""CA rotation in the certificates round, against a recording client: what each phase writes
(one patch of the CA Secret to start and to retire, ca.crt alone while trust spreads, leaves
re-issued only once every member pod started with the new bundle), resumable from the records
alone, and pods made outdated by a changed bundle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lightkube.resources.core_v1 import Pod

from etcd_operator.api import EtcdCluster, parse_cluster
from etcd_operator.handlers.certificates import (
    CertificatesRound,
    ensure_certificates,
    member_trust,
)
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN, MemberTLS
from etcd_operator.planner import ClusterState, InitialCluster
from etcd_operator.resources.labels import (
    ROTATE_CA_ANNOTATION,
    ROTATE_CA_HANDLED_ANNOTATION,
    TRUST_BUNDLE_ANNOTATION,
)
from etcd_operator.resources.pod import member_pod, trust_outdated
from etcd_operator.resources.secret import decode_data
from etcd_operator.tls import rotation
from etcd_operator.tls.pki import load_bundle, signed_by
from etcd_operator.tls.rotation import Phase, Trust
from unit.support.kube import RecordingClient

AUTO = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}
LEAVES = ["demo-peer-tls", "demo-server-tls", "demo-client-tls", "demo-operator-tls"]
MEMBERS = ["demo-0", "demo-1", "demo-2"]


def _cluster(request: str | None = None) -> EtcdCluster:
    annotations = {ROTATE_CA_ANNOTATION: request} if request is not None else {}
    return parse_cluster(
        {
            "apiVersion": "etcd.operator.io/v1alpha1",
            "kind": "EtcdCluster",
            "metadata": {
                "name": "demo",
                "namespace": "ns",
                "uid": "uid-1",
                "generation": 1,
                "annotations": annotations,
            },
            "spec": {"replicas": 3, "tls": AUTO},
        }
    )


async def _round(
    kube: RecordingClient, request: str | None = None, pods: dict[str, Pod] | None = None
) -> CertificatesRound:
    kube.written.clear()
    return await ensure_certificates(
        kube,  # type: ignore[arg-type]
        SecretReader(kube, "ns"),  # type: ignore[arg-type]
        _cluster(request),
        domain=DEFAULT_CLUSTER_DOMAIN,
        now=datetime.now(UTC),
        pods=pods,
    )


async def _pods(kube: RecordingClient) -> dict[str, Pod]:
    """Member pods as the pod builder makes them now (they trust what the Secrets hold)."""
    cluster = _cluster()
    trust = await member_trust(SecretReader(kube, "ns"), cluster)  # type: ignore[arg-type]
    initial = InitialCluster(
        ClusterState.NEW, tuple((m, f"https://{m}:2380") for m in MEMBERS), "t"
    )
    return {m: member_pod(cluster, m, "3.5.17", initial, trust=trust) for m in MEMBERS}


def _data(kube: RecordingClient, name: str) -> dict[str, bytes]:
    return decode_data(kube.secrets[name])


def _patched(kube: RecordingClient) -> list[set[str]]:
    return [set(obj["data"]) for verb, obj in kube.written if verb == "patch"]


async def test_a_requested_rotation_goes_through_every_phase_without_an_untrusted_step() -> None:
    kube = RecordingClient({})
    await _round(kube)
    old_ca = _data(kube, "demo-ca")["tls.crt"]
    pods = await _pods(kube)

    # 1. One patch of the CA Secret: the new CA signs, both are trusted, the request recorded.
    started = await _round(kube, "r1", pods)
    assert started.rotation is not None and started.rotation.start is not None
    assert _patched(kube) == [{"tls.crt", "tls.key", "ca.crt"}]
    ca = _data(kube, "demo-ca")
    new_ca = ca["tls.crt"]
    assert load_bundle(ca["ca.crt"]) == load_bundle(old_ca + new_ca)
    meta = kube.secrets["demo-ca"].metadata
    assert meta is not None and (meta.annotations or {})[ROTATE_CA_HANDLED_ANNOTATION] == "r1"

    # ... and the leaves' ca.crt alone follows; their certificates stay the old CA's.
    distributing = await _round(kube, "r1", pods)
    assert distributing.rotation is not None
    assert distributing.rotation.phase is Phase.DISTRIBUTING
    assert _patched(kube) == [{"ca.crt"}] * 4
    for name in LEAVES:
        assert _data(kube, name)["ca.crt"] == ca["ca.crt"]
        assert signed_by(_data(kube, name)["tls.crt"], old_ca)

    # 2. Pods started with the old bundle: nothing is re-issued, they are outdated.
    trust = await member_trust(SecretReader(kube, "ns"), _cluster())  # type: ignore[arg-type]
    assert trust is not None and trust.authorities == 2
    assert all(trust_outdated(p, trust) for p in pods.values())
    restarting = await _round(kube, "r1", pods)
    assert restarting.rotation is not None and restarting.rotation.phase is Phase.RESTARTING
    assert kube.written == []
    pods = {**pods, "demo-0": (await _pods(kube))["demo-0"]}
    assert (await _round(kube, "r1", pods)).rotation.phase is Phase.RESTARTING  # type: ignore[union-attr]
    assert kube.written == []

    # 3. Every pod trusts both: the leaves are re-issued by the new CA.
    pods = await _pods(kube)
    assert not any(trust_outdated(p, trust) for p in pods.values())
    reissued = await _round(kube, "r1", pods)
    assert reissued.rotation is not None and reissued.rotation.phase is Phase.REISSUING
    assert _patched(kube) == [{"tls.crt", "tls.key", "ca.crt"}] * 4
    assert all(signed_by(_data(kube, n)["tls.crt"], new_ca) for n in LEAVES)

    # Without a probe of what members serve, the old CA stays until the Secrets propagated.
    presenting = await _round(kube, "r1", pods)
    assert presenting.rotation is not None and presenting.rotation.phase is Phase.PRESENTING
    assert kube.written == [] and presenting.renew_at is not None


async def test_retiring_cuts_the_bundle_to_the_new_ca_and_pods_roll_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = RecordingClient({})
    await _round(kube)
    pods = await _pods(kube)
    await _round(kube, "r1", pods)
    await _round(kube, "r1", pods)
    pods = await _pods(kube)
    await _round(kube, "r1", pods)
    new_ca = _data(kube, "demo-ca")["tls.crt"]
    # The propagation time has passed (no probe here: no access given).
    monkeypatch.setattr(rotation, "PROPAGATION", timedelta(seconds=-120))
    retired = await _round(kube, "r1", pods)
    assert retired.rotation is not None and retired.rotation.retire
    assert _patched(kube) == [{"ca.crt"}]
    assert load_bundle(_data(kube, "demo-ca")["ca.crt"]) == load_bundle(new_ca)
    await _round(kube, "r1", pods)
    assert _patched(kube) == [{"ca.crt"}] * 4
    trust = await member_trust(SecretReader(kube, "ns"), _cluster())  # type: ignore[arg-type]
    assert trust is not None and trust.authorities == 1
    assert all(trust_outdated(p, trust) for p in pods.values())
    pods = await _pods(kube)
    done = await _round(kube, "r1", pods)
    assert done.rotation is not None and done.rotation.phase is Phase.IDLE
    assert kube.written == [] and done.handled_request == "r1"


async def test_a_kill_after_the_new_ca_resumes_from_the_records_alone() -> None:
    kube = RecordingClient({})
    await _round(kube)
    pods = await _pods(kube)
    await _round(kube, "r1", pods)
    # A new operator process: same Secrets, nothing in memory; the request is not repeated.
    resumed = RecordingClient({}, secrets=kube.secrets)
    again = await _round(resumed, "r1", pods)
    assert again.rotation is not None and again.rotation.start is None
    assert _patched(resumed) == [{"ca.crt"}] * 4
    # Killed after two of the four leaves: the other two follow, the first two stay.
    half = {**resumed.secrets, **{n: kube.secrets[n] for n in LEAVES[2:]}}
    finishing = RecordingClient({}, secrets=half)
    await _round(finishing, "r1", pods)
    assert _patched(finishing) == [{"ca.crt"}] * 2
    assert all(finishing.secrets[n] is resumed.secrets[n] for n in LEAVES[:2])


async def test_a_cluster_created_with_the_annotation_does_not_rotate_its_new_ca() -> None:
    kube = RecordingClient({})
    first = await _round(kube, "r0")
    meta = kube.secrets["demo-ca"].metadata
    assert meta is not None and (meta.annotations or {})[ROTATE_CA_HANDLED_ANNOTATION] == "r0"
    assert first.rotation is None
    again = await _round(kube, "r0", await _pods(kube))
    assert again.rotation is not None and again.rotation.phase is Phase.IDLE
    assert kube.written == []


def _pod(annotations: dict[str, str], tls: bool = True) -> Pod:
    cluster = (
        _cluster() if tls else parse_cluster({**_cluster().model_dump(by_alias=True), "spec": {}})
    )
    initial = InitialCluster(ClusterState.NEW, (("demo-0", "https://demo-0:2380"),), "t")
    pod = member_pod(
        cluster, "demo-0", "3.5.17", initial, tls=MemberTLS(True, True, False) if tls else None
    )
    assert pod.metadata is not None
    pod.metadata.annotations = {**(pod.metadata.annotations or {}), **annotations}
    return pod


def test_a_pod_is_outdated_when_it_started_with_another_bundle() -> None:
    one, two = Trust("aaaa", 1), Trust("bbbb", 2)
    assert not trust_outdated(_pod({TRUST_BUNDLE_ANNOTATION: "aaaa"}), one)
    assert trust_outdated(_pod({TRUST_BUNDLE_ANNOTATION: "aaaa"}), two)
    assert not trust_outdated(_pod({TRUST_BUNDLE_ANNOTATION: "aaaa"}), None)
    # Made by an earlier release (no record): restarted only while a rotation needs it.
    assert not trust_outdated(_pod({}), one)
    assert trust_outdated(_pod({}), two)
    # A plaintext pod trusts nothing: no bundle makes it outdated.
    assert not trust_outdated(_pod({}, tls=False), two)


def test_the_pod_builder_records_the_trust_of_pods_that_mount_certificates() -> None:
    cluster = _cluster()
    initial = InitialCluster(ClusterState.NEW, (("demo-0", "https://demo-0:2380"),), "t")
    trust = Trust("cafe", 1)
    tls_pod = member_pod(cluster, "demo-0", "3.5.17", initial, trust=trust)
    assert (tls_pod.metadata.annotations or {})[TRUST_BUNDLE_ANNOTATION] == "cafe"  # type: ignore[union-attr]
    plaintext = parse_cluster({**cluster.model_dump(by_alias=True), "spec": {}})
    plain = member_pod(plaintext, "demo-0", "3.5.17", initial, trust=trust)
    assert TRUST_BUNDLE_ANNOTATION not in (plain.metadata.annotations or {})  # type: ignore[union-attr]


def test_status_shows_the_phase_and_an_event_marks_each_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from etcd_operator.handlers import etcdcluster
    from etcd_operator.tls.rotation import RotationDecision

    posted: list[tuple[str, str]] = []
    monkeypatch.setattr(
        etcdcluster.kopf,
        "event",
        lambda _body, *, type, reason, message: posted.append((reason, message)),
    )
    ends = datetime(2036, 1, 1, tzinfo=UTC)
    restarting = CertificatesRound(
        rotation=RotationDecision(Phase.RESTARTING, "members restart"),
        handled_request="r1",
        ca_not_after=ends,
    )
    body: dict[str, object] = {"status": {"caRotation": {"phase": "Distributing"}}}
    status = etcdcluster._rotation_status(body, restarting)
    assert status is not None and status.phase == "Restarting" and status.ca_not_after == ends
    assert status.handled_request == "r1"
    assert posted == [("CARotation", "Restarting: members restart")]
    etcdcluster._rotation_status({"status": {"caRotation": {"phase": "Restarting"}}}, restarting)
    assert len(posted) == 1, "no Event while the phase stays"
    assert etcdcluster._rotation_status(body, CertificatesRound()) is None
