"""TLS in the reconcile round, against a recording client: the CA stored before anything it
signs, nothing rewritten while certificates are good, renewal in place, a broken user Secret
stops the round with a condition and an Event naming it, and every call declared."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Pod, Secret

from etcd_operator import pacing
from etcd_operator.handlers import etcdcluster
from etcd_operator.handlers.access import etcd_access
from etcd_operator.handlers.certificates import wake_by
from etcd_operator.handlers.observe import EtcdSession
from etcd_operator.handlers.secrets import SecretReader
from etcd_operator.naming import DEFAULT_CLUSTER_DOMAIN
from etcd_operator.resources.labels import owner_reference
from etcd_operator.resources.secret import decode_data, tls_secret
from etcd_operator.tls.pki import facts, issue, key_matches, new_ca, signed_by
from etcd_operator.tls.renewal import LeafKind, leaf_profile
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient
from unit.test_rbac import _granted

AUTO = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}
SECRET_MODE = {
    "peer": {"mode": "Secret", "secretName": "my-peer"},
    "client": {"mode": "Secret", "secretName": "my-server", "operatorSecretName": "my-op"},
}
LEAVES = ["demo-peer-tls", "demo-server-tls", "demo-client-tls", "demo-operator-tls"]


def _body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "etcd.operator.io/v1alpha1",
        "kind": "EtcdCluster",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"replicas": 3, **spec},
    }


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    posted: list[tuple[str, str, str]] = []

    def event(_body: Any, *, type: str, reason: str, message: str) -> None:
        posted.append((type, reason, message))

    def warn(_body: Any, *, reason: str, message: str) -> None:
        posted.append(("Warning", reason, message))

    monkeypatch.setattr(etcdcluster.kopf, "event", event)
    monkeypatch.setattr(etcdcluster.kopf, "warn", warn)
    return posted


async def _round(kube: RecordingClient) -> float:
    return await etcdcluster.reconcile_once(
        kube,  # type: ignore[arg-type]
        etcdcluster.ClusterLoop(),
        "ns",
        "demo",
        cluster_domain=DEFAULT_CLUSTER_DOMAIN,
    )


def _secret_writes(kube: RecordingClient) -> list[tuple[str, str]]:
    out = []
    for verb, obj in kube.written:
        if isinstance(obj, Secret):
            out.append((verb, obj.metadata.name))  # type: ignore[union-attr]
        elif verb == "patch" and "data" in obj:
            out.append((verb, "?"))
    return out


async def test_a_new_auto_cluster_gets_its_ca_first_then_its_certificates_then_pods(
    events: list[tuple[str, str, str]],
) -> None:
    kube = RecordingClient(_body(tls=AUTO))
    delay = await _round(kube)
    names = [name for _, name in _secret_writes(kube)]
    assert names == ["demo-ca", *LEAVES]
    first_pod = next(i for i, (_, o) in enumerate(kube.written) if isinstance(o, Pod))
    last_secret = max(i for i, (_, o) in enumerate(kube.written) if isinstance(o, Secret))
    assert last_secret < first_pod, "pods are created once their Secrets exist"
    ca = decode_data(kube.secrets["demo-ca"])
    for name in LEAVES:
        secret = kube.secrets[name]
        data = decode_data(secret)
        assert secret.type == "kubernetes.io/tls"
        assert secret.metadata.ownerReferences[0].uid == "uid-1"  # type: ignore[union-attr,index]
        assert secret.metadata.labels["app.kubernetes.io/instance"] == "demo"  # type: ignore[union-attr,index]
        assert data["ca.crt"] == ca["ca.crt"]
        assert signed_by(data["tls.crt"], ca["tls.crt"])
        assert key_matches(data["tls.crt"], data["tls.key"])
    assert facts(decode_data(kube.secrets["demo-operator-tls"])["tls.crt"]).common_name == "root"
    issued = [m for _, r, m in events if r == etcdcluster.CERTIFICATE_ISSUED]
    assert len(issued) == 5
    assert not any("PRIVATE" in m for _, _, m in events), "no key material in Events"
    assert delay == pacing.AFTER_ACTION


async def test_good_certificates_are_not_rewritten(events: list[tuple[str, str, str]]) -> None:
    kube = RecordingClient(_body(tls=AUTO))
    await _round(kube)
    again = RecordingClient(_body(tls=AUTO), secrets=kube.secrets)
    await _round(again)
    assert _secret_writes(again) == []
    assert ("", "secrets", "get") in again.calls


async def test_a_kill_between_the_ca_and_the_leaves_is_finished_with_the_stored_ca(
    events: list[tuple[str, str, str]],
) -> None:
    kube = RecordingClient(_body(tls=AUTO))
    await _round(kube)
    ca_only = {"demo-ca": kube.secrets["demo-ca"]}
    resumed = RecordingClient(_body(tls=AUTO), secrets=ca_only)
    await _round(resumed)
    assert [n for _, n in _secret_writes(resumed)] == LEAVES, "the CA is kept"
    ca = decode_data(ca_only["demo-ca"])["tls.crt"]
    assert all(signed_by(decode_data(resumed.secrets[n])["tls.crt"], ca) for n in LEAVES)


def _aged(kube: RecordingClient, name: str, kind: LeafKind, issued: datetime) -> None:
    """Replace a leaf by one issued at `issued` (same CA, same names)."""
    cluster = make_cluster(tls=AUTO)
    ca = decode_data(kube.secrets["demo-ca"])
    from etcd_operator.tls.pki import KeyPair

    pair = issue(
        KeyPair(ca["tls.crt"], ca["tls.key"]),
        leaf_profile(kind, "demo", "ns", DEFAULT_CLUSTER_DOMAIN),
        issued,
        timedelta(hours=2160),
    )
    data = {"tls.crt": pair.cert, "tls.key": pair.key, "ca.crt": ca["ca.crt"]}
    kube.secrets[name] = tls_secret(cluster, name, data)


async def test_a_certificate_due_for_renewal_is_reissued_in_place(
    events: list[tuple[str, str, str]],
) -> None:
    kube = RecordingClient(_body(tls=AUTO))
    await _round(kube)
    _aged(kube, "demo-server-tls", LeafKind.SERVER, datetime.now(UTC) - timedelta(days=61))
    old = facts(decode_data(kube.secrets["demo-server-tls"])["tls.crt"])
    again = RecordingClient(_body(tls=AUTO), secrets=kube.secrets)
    await _round(again)
    assert _secret_writes(again) == [("patch", "?")]
    new = facts(decode_data(again.secrets["demo-server-tls"])["tls.crt"])
    assert new.serial != old.serial and new.not_after > old.not_after
    assert any("demo-server-tls (Expiring)" in m for _, _, m in events)


def test_the_next_round_is_due_when_a_certificate_is() -> None:
    now = datetime.now(UTC)
    assert wake_by(None, now, pacing.IN_SYNC) == pacing.IN_SYNC
    assert wake_by(now + timedelta(hours=1), now, pacing.IN_SYNC) == pacing.IN_SYNC
    assert wake_by(now + timedelta(seconds=5), now, pacing.MAX_BACKOFF) == 5.0
    assert wake_by(now - timedelta(seconds=5), now, pacing.PAUSED) == 1.0


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ({}, "Secret my-peer (tls.peer.secretName) does not exist"),
        ("bad-key", "Secret my-server (tls.client.secretName): tls.key does not belong"),
    ],
)
async def test_a_missing_or_broken_user_secret_changes_nothing_but_status(
    events: list[tuple[str, str, str]], secrets: Any, named: str
) -> None:
    now = datetime.now(UTC)
    ca = new_ca("user CA", now)
    cluster = make_cluster(tls=SECRET_MODE)
    present = {}
    if secrets == "bad-key":
        for name in ("my-peer", "my-server", "my-op"):
            pair = issue(ca, leaf_profile(LeafKind.PEER, "demo", "ns", "x"), now, timedelta(1))
            other = issue(ca, leaf_profile(LeafKind.PEER, "demo", "ns", "x"), now, timedelta(1))
            key = other.key if name == "my-server" else pair.key
            data = {"tls.crt": pair.cert, "tls.key": key, "ca.crt": ca.cert}
            present[name] = Secret(
                metadata=ObjectMeta(name=name), data=tls_secret(cluster, name, data).data
            )
    kube = RecordingClient(_body(tls=SECRET_MODE), secrets=present)
    delay = await _round(kube)
    assert [type(o).__name__ for _, o in kube.written] == ["dict"], "only the status patch"
    status = kube.written[0][1]["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "TLSSecretInvalid" and named in degraded["message"]
    assert ("Warning", "TLSSecretInvalid") in {(t, r) for t, r, _ in events}
    assert delay == pacing.backoff(1)


async def test_a_secret_of_the_operators_name_that_is_not_the_clusters_is_never_overwritten(
    events: list[tuple[str, str, str]],
) -> None:
    foreign = Secret(metadata=ObjectMeta(name="demo-client-tls"), data={"x": "eQ=="})
    kube = RecordingClient(_body(tls=AUTO), secrets={"demo-client-tls": foreign})
    await _round(kube)
    assert kube.secrets["demo-client-tls"] is foreign
    assert not any(isinstance(o, Pod) for _, o in kube.written)
    status = next(p["status"] for v, p in kube.written if v == "patch")
    assert "demo-client-tls exists and is not this cluster's" in str(status)


async def test_every_call_of_a_tls_round_is_declared(events: list[tuple[str, str, str]]) -> None:
    kube = RecordingClient(_body(tls=AUTO))
    await _round(kube)
    again = RecordingClient(_body(tls=AUTO), secrets=kube.secrets)
    _aged(again, "demo-peer-tls", LeafKind.PEER, datetime.now(UTC) - timedelta(days=80))
    await _round(again)
    calls = kube.calls | again.calls
    assert {("", "secrets", v) for v in ("get", "create", "patch")} <= calls
    assert calls <= _granted(), calls - _granted()


async def test_the_operator_connects_with_its_own_certificate_and_a_new_one_rebuilds_the_client(
    events: list[tuple[str, str, str]],
) -> None:
    kube = RecordingClient(_body(tls=AUTO))
    await _round(kube)
    cluster = make_cluster(tls=AUTO)
    access = await etcd_access(SecretReader(kube, "ns"), cluster)  # type: ignore[arg-type]
    assert access.usable and access.tls is not None
    operator = decode_data(kube.secrets["demo-operator-tls"])
    assert access.tls.client_cert == operator["tls.crt"]
    assert access.tls.ca_cert == operator["ca.crt"]
    endpoints = ["https://demo-0.demo.ns.svc.cluster.local:2379"]
    session = EtcdSession()
    first = await session.client(endpoints, ["u0"], access.config(endpoints))
    assert await session.client(endpoints, ["u0"], access.config(endpoints)) is first
    _aged(kube, "demo-operator-tls", LeafKind.OPERATOR, datetime.now(UTC))
    renewed = await etcd_access(SecretReader(kube, "ns"), cluster)  # type: ignore[arg-type]
    assert await session.client(endpoints, ["u0"], renewed.config(endpoints)) is not first
    await session.close()
    del kube.secrets["demo-operator-tls"]
    missing = await etcd_access(SecretReader(kube, "ns"), cluster)  # type: ignore[arg-type]
    assert not missing.usable and "demo-operator-tls" in (missing.problem or "")


def test_secret_data_round_trips() -> None:
    secret = tls_secret(make_cluster(), "x", {"tls.crt": b"abc"})
    assert secret.data == {"tls.crt": base64.b64encode(b"abc").decode()}
    assert decode_data(secret) == {"tls.crt": b"abc"}
    assert secret.metadata.ownerReferences == [owner_reference(make_cluster())]  # type: ignore[union-attr]
