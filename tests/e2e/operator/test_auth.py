"""spec.auth: etcd refuses anonymous clients, the operator keeps managing the cluster as root,
auth can be turned on and off on a running cluster, and the password shows up nowhere."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Secret

from etcd_operator.etcd import AuthError, Credentials, EtcdClient
from harness.clusters import (
    condition,
    create_cluster,
    create_ready_cluster,
    etcd_client,
    eventually,
    get_cluster,
    member_urls,
    patch_spec,
    root_credentials,
    wait_ready,
)
from harness.operator_process import OperatorProcess
from harness.waits import wait_events

pytestmark = pytest.mark.e2e


async def _refuses_anonymous_writes(endpoints: tuple[str, ...]) -> None:
    async with etcd_client(endpoints) as anon:
        with pytest.raises(AuthError, match="user name is empty"):
            await anon.put("anonymous", "write")


async def _auth_enabled(etcd: EtcdClient) -> bool:
    return (await etcd.auth_status()).enabled


async def _assert_never_shown(
    kube: AsyncClient, operator: OperatorProcess, namespace: str, name: str, password: str
) -> None:
    log = operator.log_path.read_text(errors="replace")
    assert log, "the operator's log was captured"
    assert password not in log
    events = [e async for e in kube.list(Event, namespace=namespace)]
    assert events
    assert not [e for e in events if password in json.dumps(e.to_dict())]  # type: ignore[no-untyped-call]
    status = (await get_cluster(kube, namespace, name))["status"]
    assert password not in json.dumps(status)


async def test_auth_cluster_refuses_anonymous_clients_and_still_scales(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    await create_ready_cluster(
        kube, namespace, "locked", {"replicas": 3, "auth": {"enabled": True}}
    )
    secret = await kube.get(Secret, "locked-root", namespace=namespace)
    owners = (secret.metadata.ownerReferences or []) if secret.metadata else []
    assert [(o.kind, o.name) for o in owners] == [("EtcdCluster", "locked")]
    root = await root_credentials(kube, namespace, "locked")
    assert len(root.password) >= 43, "32 random bytes, urlsafe base64"
    endpoints = member_urls(namespace, "locked", range(3))
    async with etcd_client(endpoints, credentials=root) as etcd:
        assert await _auth_enabled(etcd)
        await etcd.put("written-by", "root")
    await _refuses_anonymous_writes(endpoints)

    # Scaling out needs MemberAdd and MemberPromote, which etcd grants to root only.
    await patch_spec(kube, namespace, "locked", {"replicas": 4})
    await wait_ready(kube, namespace, "locked", 4, timeout=240)
    async with etcd_client(member_urls(namespace, "locked", range(4)), credentials=root) as etcd:
        members = await etcd.member_list()
        assert len(members.voters) == 4 and not members.learners
        kv = await etcd.get("written-by")
        assert kv is not None and kv.value == b"root"
    await _assert_never_shown(kube, operator, namespace, "locked", root.password)


async def test_auth_turned_on_and_off_on_a_running_cluster(
    kube: AsyncClient, namespace: str, operator: OperatorProcess
) -> None:
    await create_ready_cluster(kube, namespace, "open", {"replicas": 1})
    endpoints = member_urls(namespace, "open", range(1))
    async with etcd_client(endpoints) as anon:
        await anon.put("before", "auth")

    # A Secret that does not exist yet: a condition and an Event name it, nothing else changes.
    await patch_spec(kube, namespace, "open", {"auth": {"enabled": True, "rootSecretName": "mine"}})

    async def degraded() -> dict[str, Any] | None:
        found = condition(await get_cluster(kube, namespace, "open"), "Degraded")
        return found if found and found.get("reason") == "AuthSecretInvalid" else None

    found = await eventually(degraded, 60, "Degraded AuthSecretInvalid")
    assert f"Secret {namespace}/mine does not exist" in found["message"]
    # kopf posts the Event from its own queue, after the status write just seen.
    await wait_events(
        kube,
        namespace,
        lambda e: e.reason == "AuthSecretInvalid" and "mine" in (e.message or ""),
        "an AuthSecretInvalid Event naming the Secret",
    )
    async with etcd_client(endpoints) as anon:
        assert not await _auth_enabled(anon)

    password = "user-chosen-" + base64.b32encode(b"a root password!").decode()
    await kube.create(
        Secret(
            metadata=ObjectMeta(name="mine", namespace=namespace),
            stringData={"password": password},
        )
    )
    root = Credentials("root", password)
    async with etcd_client(endpoints, credentials=root) as etcd:
        await eventually(lambda: _auth_enabled(etcd), 90, "auth enabled in etcd")
        kv = await etcd.get("before")
        assert kv is not None and kv.value == b"auth"
    await _refuses_anonymous_writes(endpoints)
    await wait_ready(kube, namespace, "open", 1, timeout=90)

    # Back off: etcd stops asking for credentials.
    await patch_spec(kube, namespace, "open", {"auth": {"enabled": False}})

    async def open_again() -> bool:
        async with etcd_client(endpoints) as anon:
            return await anon.put("after", "auth") > 0

    await eventually(open_again, 90, "anonymous writes accepted again")
    await _assert_never_shown(kube, operator, namespace, "open", password)


async def test_changing_the_root_secret_while_auth_stays_on_is_refused(
    kube: AsyncClient, namespace: str
) -> None:
    spec = {"replicas": 1, "paused": True, "auth": {"enabled": True, "rootSecretName": "a"}}
    await create_cluster(kube, namespace, "fixed", spec)
    with pytest.raises(ApiError) as err:
        await patch_spec(kube, namespace, "fixed", {"auth": {"rootSecretName": "b"}})
    assert err.value.status.code == 422
    assert "rootSecretName cannot change while auth stays enabled" in (
        err.value.status.message or ""
    )
    # Turning auth off and naming another Secret at once is allowed.
    await patch_spec(kube, namespace, "fixed", {"auth": {"enabled": False, "rootSecretName": "b"}})
