"""etcd 3.6's Status fields that the bundled 3.5 stubs lack, and the downgrade refusals."""

from __future__ import annotations

import grpc
import pytest
from aetcd import rpc as pb

from etcd_operator.etcd import DowngradeInProgress, DowngradeRefused, EtcdError
from etcd_operator.etcd._status_extras import _StatusExtras, status_extras
from etcd_operator.etcd.errors import NoDowngradeInProgress, from_rpc_error


def _as_received(extras: bytes) -> bytes:
    """What the client re-serializes: a 3.5-stub StatusResponse parsed from a 3.6 answer
    (the fields it does not know are kept as unknown fields)."""
    known = pb.StatusResponse(version="3.6.16", dbSize=20480, raftIndex=8)
    received = pb.StatusResponse.FromString(known.SerializeToString() + extras)
    assert received.version == "3.6.16" and received.raftIndex == 8
    return bytes(received.SerializeToString())


def test_storage_version_and_downgrade_info_survive_the_older_stubs() -> None:
    extras = _StatusExtras(storageVersion="3.5.0")
    extras.downgradeInfo.enabled = True
    extras.downgradeInfo.targetVersion = "3.5.0"
    got = status_extras(_as_received(extras.SerializeToString()))
    assert (got.storage_version, got.downgrade_enabled, got.downgrade_target) == (
        "3.5.0",
        True,
        "3.5.0",
    )


def test_a_3_5_member_reports_none_of_them() -> None:
    got = status_extras(_as_received(b""))
    assert (got.storage_version, got.downgrade_enabled, got.downgrade_target) == ("", False, "")


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "etcdserver: invalid downgrade target version",
            DowngradeRefused,
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: cluster has a downgrade job in progress",
            DowngradeInProgress,
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: no inflight downgrade job",
            NoDowngradeInProgress,
        ),
    ],
)
def test_downgrade_refusals_keep_etcds_reason(
    code: grpc.StatusCode, details: str, expected: type[EtcdError]
) -> None:
    err = from_rpc_error(_rpc_error(code, details), "http://m0:2379")
    assert type(err) is expected and err.details == details
