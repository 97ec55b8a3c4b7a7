"""Member pods under TLS: etcd's TLS flags, https URLs, the Secrets mounted read-only, the
scheme taken from the `MemberTLS` the caller passes, and rollouts when TLS settings change."""

from __future__ import annotations

from typing import Any

import pytest

from etcd_operator.naming import MemberTLS, initial_cluster
from etcd_operator.planner import ClusterState, InitialCluster
from etcd_operator.resources import member_pod, pod_outdated, template_hash
from etcd_operator.resources.pod import served_tls
from unit.support.clusters import make_cluster

AUTO = {"peer": {"mode": "Auto"}, "client": {"mode": "Auto"}}
SECRETS = {
    "peer": {"mode": "Secret", "secretName": "my-peer"},
    "client": {"mode": "Secret", "secretName": "my-server", "operatorSecretName": "my-op"},
}
HTTPS = MemberTLS(peer=True, client=True)


def _pod(tls_spec: dict[str, Any], tls: MemberTLS | None = None) -> dict[str, Any]:
    cluster = make_cluster(tls=tls_spec)
    peers = initial_cluster("demo", "ns", ["demo-0", "demo-1"], tls=tls or HTTPS)
    initial = InitialCluster(ClusterState.NEW, tuple(peers.items()), "t")
    built: dict[str, Any] = member_pod(cluster, "demo-1", "3.6.16", initial, tls=tls).to_dict()
    return built


def _args(pod: dict[str, Any]) -> list[str]:
    args: list[str] = pod["spec"]["containers"][0]["args"]
    return args


def _mounts(pod: dict[str, Any]) -> dict[str, tuple[str, str | None, bool]]:
    """volume name -> (mount path, Secret name, read-only)."""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    return {
        m["name"]: (
            m["mountPath"],
            volumes[m["name"]].get("secret", {}).get("secretName"),
            m.get("readOnly", False),
        )
        for m in pod["spec"]["containers"][0]["volumeMounts"]
    }


@pytest.mark.parametrize(
    ("spec", "peer_secret", "server_secret"),
    [(AUTO, "demo-peer-tls", "demo-server-tls"), (SECRETS, "my-peer", "my-server")],
    ids=["auto", "secret"],
)
def test_mutual_tls_on_both_ports(
    spec: dict[str, Any], peer_secret: str, server_secret: str
) -> None:
    pod = _pod(spec)
    args = _args(pod)
    for flag in (
        "--listen-peer-urls=https://0.0.0.0:2380",
        "--listen-client-urls=https://0.0.0.0:2379",
        "--listen-metrics-urls=http://0.0.0.0:2381",  # probes stay plain
        "--advertise-client-urls=https://demo-1.demo.ns.svc.cluster.local:2379",
        "--initial-advertise-peer-urls=https://demo-1.demo.ns.svc.cluster.local:2380",
        "--cert-file=/etc/etcd/tls/server/tls.crt",
        "--key-file=/etc/etcd/tls/server/tls.key",
        "--trusted-ca-file=/etc/etcd/tls/server/ca.crt",
        "--client-cert-auth",
        "--peer-cert-file=/etc/etcd/tls/peer/tls.crt",
        "--peer-key-file=/etc/etcd/tls/peer/tls.key",
        "--peer-trusted-ca-file=/etc/etcd/tls/peer/ca.crt",
        "--peer-client-cert-auth",
    ):
        assert flag in args, flag
    assert any(a.startswith("--initial-cluster=demo-0=https://") for a in args)
    mounts = _mounts(pod)
    assert mounts["peer-tls"] == ("/etc/etcd/tls/peer", peer_secret, True)
    assert mounts["server-tls"] == ("/etc/etcd/tls/server", server_secret, True)
    modes = {v["name"]: v.get("secret", {}).get("defaultMode") for v in pod["spec"]["volumes"]}
    assert modes["peer-tls"] == modes["server-tls"] == 0o440  # group (fsGroup) reads, others not
    assert pod["spec"]["securityContext"]["fsGroup"] == 65532


def test_one_side_only() -> None:
    pod = _pod({"peer": {"mode": "Auto"}}, MemberTLS(peer=True))
    args = _args(pod)
    assert "--listen-client-urls=http://0.0.0.0:2379" in args
    assert "--listen-peer-urls=https://0.0.0.0:2380" in args
    assert not any(a.startswith(("--cert-file", "--client-cert-auth")) for a in args)
    assert set(_mounts(pod)) == {"data", "peer-tls"}


def test_plaintext_spec_adds_nothing() -> None:
    pod = _pod({}, MemberTLS())
    assert set(_mounts(pod)) == {"data"}
    assert not any("tls" in a or "https" in a or "cert" in a for a in _args(pod))


def test_allow_plaintext_serves_both_schemes_on_the_client_port() -> None:
    spec = {"client": {"mode": "Auto", "allowPlaintext": True}}
    args = _args(_pod(spec, MemberTLS(client=True, client_plaintext=True)))
    assert "--listen-client-urls=https://0.0.0.0:2379,http://0.0.0.0:2379" in args
    assert "--advertise-client-urls=https://demo-1.demo.ns.svc.cluster.local:2379" in args


def test_the_scheme_comes_from_the_member_tls_passed_the_certificates_from_the_spec() -> None:
    # During a switch a member still serves plaintext peers (its registered URL) while it
    # already holds the peer certificate, to reach members that serve https.
    args = _args(_pod(AUTO, MemberTLS(peer=False, client=True)))
    assert "--initial-advertise-peer-urls=http://demo-1.demo.ns.svc.cluster.local:2380" in args
    assert "--listen-peer-urls=http://0.0.0.0:2380" in args
    assert "--peer-cert-file=/etc/etcd/tls/peer/tls.crt" in args
    assert "--peer-trusted-ca-file=/etc/etcd/tls/peer/ca.crt" in args


def test_tls_without_a_named_certificate_is_refused() -> None:
    with pytest.raises(ValueError, match="names no certificate"):
        _pod({}, MemberTLS(peer=True))


def test_tls_settings_roll_members_and_plaintext_keeps_earlier_digests() -> None:
    plain = make_cluster()
    assert template_hash(make_cluster(tls={"certificateDuration": "1000h"})) == template_hash(plain)
    auto = make_cluster(tls=AUTO)
    assert template_hash(auto) != template_hash(plain)
    # the operator's own certificate does not shape pods; the members' does
    other_op = {**SECRETS, "client": {**SECRETS["client"], "operatorSecretName": "other"}}
    assert template_hash(make_cluster(tls=other_op)) == template_hash(make_cluster(tls=SECRETS))
    other_server = {**SECRETS, "client": {**SECRETS["client"], "secretName": "other"}}
    assert template_hash(make_cluster(tls=other_server)) != template_hash(make_cluster(tls=SECRETS))
    pod = member_pod(
        auto,
        "demo-1",
        "3.6.16",
        InitialCluster(ClusterState.EXISTING, (("demo-1", "https://x:2380"),), "t"),
        tls=HTTPS,
    )
    assert not pod_outdated(auto, pod)
    assert pod_outdated(
        make_cluster(tls={**AUTO, "client": {"mode": "Auto", "allowPlaintext": True}}), pod
    )


@pytest.mark.parametrize(
    "tls",
    [
        MemberTLS(),
        MemberTLS(peer=True),
        MemberTLS(client=True),
        MemberTLS(client=True, client_plaintext=True),
        MemberTLS(peer=True, client=True, client_plaintext=True),
        HTTPS,
    ],
)
def test_what_a_pod_serves_is_read_back_from_its_flags(tls: MemberTLS) -> None:
    """The operator's record of a pod's schemes is the pod itself: what the builder wrote is
    what observe reads, and the peer certificate is held whenever the spec has peer TLS."""
    cluster = make_cluster(tls=AUTO)
    peers = initial_cluster("demo", "ns", ["demo-0", "demo-1"], tls=tls)
    initial = InitialCluster(ClusterState.NEW, tuple(peers.items()), "t")
    pod = member_pod(cluster, "demo-1", "3.6.16", initial, tls=tls)
    assert served_tls(pod) == (tls, True)
    plain = make_cluster()
    built = member_pod(plain, "demo-1", "3.6.16", initial, tls=MemberTLS())
    assert served_tls(built) == (MemberTLS(), False)
