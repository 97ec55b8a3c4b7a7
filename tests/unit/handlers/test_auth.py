"""Reading root's password from the root Secret, and what observe makes of it: each problem
names the Secret, and the password stays out of every message and repr."""

from __future__ import annotations

import base64

import pytest
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret

from etcd_operator.etcd import Credentials
from etcd_operator.handlers.auth import (
    RootAccess,
    RootSecretUnavailable,
    read_root,
    root_credentials,
)
from etcd_operator.handlers.observe import EtcdSession, _auth_state, _EtcdView, etcd_config, observe
from unit.support.clusters import make_cluster
from unit.support.kube import RecordingClient

PASSWORD = "s3cret-" + "z" * 40


def _secret(name: str, data: dict[str, str] | None) -> Secret:
    return Secret(metadata=ObjectMeta(name=name, namespace="ns"), data=data)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _kube(*secrets: Secret) -> RecordingClient:
    return RecordingClient(
        {}, secrets={s.metadata.name: s for s in secrets if s.metadata and s.metadata.name}
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "Secret ns/mine has no key 'password'"),
        ({"other": _b64("x")}, "Secret ns/mine has no key 'password'"),
        ({"password": ""}, "Secret ns/mine: 'password' is empty"),
        ({"password": base64.b64encode(b"\xff\xfe").decode()}, "is not UTF-8 text"),
    ],
)
async def test_an_unusable_secret_is_named_with_what_is_wrong(
    data: dict[str, str] | None, problem: str
) -> None:
    cluster = make_cluster(auth={"enabled": True, "rootSecretName": "mine"})
    access = await read_root(_kube(_secret("mine", data)), cluster)  # type: ignore[arg-type]
    assert access.credentials is None and access.problem is not None
    assert problem in access.problem


async def test_a_missing_users_secret_is_a_problem_and_never_created() -> None:
    cluster = make_cluster(auth={"enabled": True, "rootSecretName": "mine"})
    kube = _kube()
    access = await read_root(kube, cluster)  # type: ignore[arg-type]
    assert access.problem == "Secret ns/mine does not exist" and not access.creatable
    with pytest.raises(RootSecretUnavailable, match="ns/mine does not exist"):
        await root_credentials(kube, cluster)  # type: ignore[arg-type]
    assert not kube.writes


async def test_the_generated_secret_is_created_once_and_then_read() -> None:
    cluster = make_cluster(auth={"enabled": True})
    kube = _kube()
    first = await root_credentials(kube, cluster)  # type: ignore[arg-type]
    again = await root_credentials(kube, cluster)  # type: ignore[arg-type]
    assert first == again and first.username == "root"
    assert [verb for verb, _ in kube.written] == ["create"]


async def test_the_password_is_read_and_never_shown() -> None:
    cluster = make_cluster(auth={"enabled": True, "rootSecretName": "mine"})
    kube = _kube(_secret("mine", {"password": _b64(PASSWORD)}))
    access = await read_root(kube, cluster)  # type: ignore[arg-type]
    assert access.credentials is not None and access.credentials.password == PASSWORD
    config = etcd_config(["http://demo-0:2379"], access.credentials)
    for shown in (repr(access), str(access), repr(config), str(config)):
        assert PASSWORD not in shown


def test_a_generated_secret_not_made_yet_is_no_problem_until_auth_is_on() -> None:
    cluster = make_cluster(auth={"enabled": True})
    missing = RootAccess("demo-root", problem="Secret ns/demo-root does not exist", creatable=True)
    off = _auth_state(cluster, missing, _EtcdView(None, {}, False, None))
    assert off.wanted and off.enabled is False and off.secret_problem is None
    on = _auth_state(cluster, missing, _EtcdView(None, {}, True, "user name is empty"))
    assert on.secret_problem == "Secret ns/demo-root does not exist"
    assert on.rejected is None  # no credentials were offered: the Secret is the problem


def test_a_refused_password_is_reported_as_rejected() -> None:
    cluster = make_cluster(auth={"enabled": True, "rootSecretName": "mine"})
    access = RootAccess("mine", credentials=Credentials("root", PASSWORD))
    seen = _EtcdView(None, {}, True, "etcdserver: authentication failed")
    state = _auth_state(cluster, access, seen)
    assert state.rejected == "etcdserver: authentication failed"
    assert PASSWORD not in repr(state)


async def test_no_secret_is_read_while_auth_is_off() -> None:
    """Idle clusters without auth cost no Secret read."""
    cluster = make_cluster()
    kube = RecordingClient({})
    world = await observe(
        kube,  # type: ignore[arg-type]
        cluster,
        deleting=False,
        etcd=EtcdSession(),
        domain="cluster.local",
    )
    assert ("", "secrets", "get") not in kube.calls
    assert world.observed.auth.wanted is False
