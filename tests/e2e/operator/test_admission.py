"""Bad specs are rejected by the API server itself, with a message that says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from harness.clusters import create_cluster, get_cluster, patch_spec

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"replicas": -1}, "spec.replicas"),
        ({"replicas": 0}, "spec.replicas"),
        ({"replicas": 10}, "spec.replicas"),
        ({"version": "latest"}, "spec.version"),
        ({"version": "v3.6.16"}, "spec.version"),
        ({"storage": {"size": "-1Gi"}}, "storage.size"),
        ({"etcd": {"heartbeatIntervalMs": 500, "electionTimeoutMs": 1000}}, "5 times"),
        ({"pvcRetentionPolicy": {"whenScaled": "Sometimes"}}, "whenScaled"),
        ({"tls": {"peer": {"mode": "Secret"}}}, "tls.peer.secretName is required"),
        (
            {"tls": {"client": {"mode": "Secret", "secretName": "s"}}},
            "tls.client.operatorSecretName is required",
        ),
        (
            {"tls": {"certificateDuration": "2m", "renewBefore": "2m"}},
            "tls.renewBefore must be shorter",
        ),
        ({"tls": {"certificateDuration": "30s"}}, "tls.certificateDuration must be at least"),
    ],
    ids=[
        "negative-replicas",
        "zero-replicas",
        "too-many-replicas",
        "version-word",
        "version-with-v",
        "negative-size",
        "election-timeout",
        "retention-policy",
        "tls-secret-name",
        "tls-operator-secret-name",
        "tls-renew-before",
        "tls-short-duration",
    ],
)
async def test_invalid_spec_is_rejected_at_admission(
    kube: AsyncClient, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as err:
        await create_cluster(kube, namespace, "bad", spec)
    assert err.value.status.code == 422
    assert message in (err.value.status.message or "")


@pytest.mark.parametrize(
    ("before", "after", "message"),
    [
        ({"storage": {"size": "2Gi"}}, {"storage": {"size": "1Gi"}}, "may grow but not shrink"),
        (
            {"storage": {"storageClassName": "standard"}},
            {"storage": {"storageClassName": "other"}},
            "storageClassName is immutable",
        ),
        (
            {"tls": {"peer": {"mode": "Auto"}}},
            {"tls": {"peer": {"mode": "Disabled"}}},
            "tls.peer.mode may only go from Disabled to Auto or Secret",
        ),
        (
            {"tls": {"client": {"mode": "Auto"}}},
            {"tls": {"client": {"mode": "Secret", "secretName": "s", "operatorSecretName": "o"}}},
            "tls.client.mode may only go from Disabled to Auto or Secret",
        ),
    ],
    ids=["storage-shrink", "storage-class-change", "tls-peer-off", "tls-client-to-secret"],
)
async def test_forbidden_spec_changes_are_rejected(
    kube: AsyncClient,
    namespace: str,
    before: dict[str, Any],
    after: dict[str, Any],
    message: str,
) -> None:
    await create_cluster(kube, namespace, "change", {"replicas": 1, "paused": True, **before})
    with pytest.raises(ApiError) as err:
        await patch_spec(kube, namespace, "change", after)
    assert err.value.status.code == 422
    assert message in (err.value.status.message or "")


async def test_storage_may_grow(kube: AsyncClient, namespace: str) -> None:
    await create_cluster(kube, namespace, "grow", {"replicas": 1, "paused": True})
    before = await get_cluster(kube, namespace, "grow")
    await patch_spec(kube, namespace, "grow", {"storage": {"size": "2Gi"}})
    after = await get_cluster(kube, namespace, "grow")
    assert after["spec"]["storage"]["size"] == "2Gi", "the larger size was admitted and stored"
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
