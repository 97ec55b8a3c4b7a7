"""Pure parts of etcd_operator.etcd: configuration, error translation, snapshot verification.

The calls themselves are tested against real etcd in tests/integration.
"""

from __future__ import annotations

import hashlib

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.etcd import (
    AuthError,
    Credentials,
    EtcdConfig,
    EtcdError,
    EtcdTimeout,
    EtcdUnavailable,
    EtcdUnreachable,
    LearnerNotReady,
    MemberNotFound,
    MemberNotLearner,
    NoLeader,
    NotLeader,
    ReconfigurationRejected,
    SnapshotIntegrityError,
    TLSConfig,
    TooManyLearners,
)
from etcd_operator.etcd.client import SnapshotStream
from etcd_operator.etcd.config import parse_endpoint
from etcd_operator.etcd.errors import from_rpc_error, is_transport_failure


def test_endpoints_parse_to_grpc_targets() -> None:
    assert parse_endpoint("http://10.0.0.1:2379", tls=False) == "10.0.0.1:2379"
    assert parse_endpoint("https://a.b.svc:2379", tls=True) == "a.b.svc:2379"
    assert parse_endpoint("a.b.svc:2379", tls=True) == "a.b.svc:2379"
    assert parse_endpoint("[::1]:2379", tls=False) == "[::1]:2379"


@pytest.mark.parametrize(
    ("endpoint", "tls"),
    [
        ("https://a:2379", False),  # TLS URL without TLS material
        ("http://a:2379", True),  # plaintext URL with TLS configured
        ("unix:///x", False),
        ("http://a", False),
        ("a", False),
        ("http://a:2379/path", False),
    ],
)
def test_bad_endpoints_are_refused(endpoint: str, tls: bool) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(endpoint, tls=tls)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        EtcdConfig(endpoints=())
    with pytest.raises(TypeError):
        EtcdConfig(endpoints="http://a:2379")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        EtcdConfig(endpoints=("http://a:2379",), request_timeout=0)
    with pytest.raises(ValueError):
        TLSConfig(ca_cert=b"ca", client_cert=b"cert")
    tls = TLSConfig(ca_cert=b"ca", client_cert=b"c", client_key=b"secret-key")
    config = EtcdConfig(
        endpoints=("https://a:2379",), tls=tls, credentials=Credentials("root", "pw")
    )
    # secrets stay out of logs
    assert "secret-key" not in repr(config) and "pw" not in repr(config.credentials)


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, "etcdserver: member not found", MemberNotFound),
        (grpc.StatusCode.FAILED_PRECONDITION, "etcdserver: not leader", NotLeader),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: can only promote a learner member which is in sync with leader",
            LearnerNotReady,
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: can only promote a learner member",
            MemberNotLearner,
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: too many learner members in cluster",
            TooManyLearners,
        ),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: re-configuration failed due to not enough started members",
            ReconfigurationRejected,
        ),
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: unhealthy cluster", ReconfigurationRejected),
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader", NoLeader),
        (grpc.StatusCode.UNAVAILABLE, "etcdserver: request timed out", EtcdUnavailable),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", EtcdUnreachable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", EtcdTimeout),
        (grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token", AuthError),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "etcdserver: authentication failed, invalid user ID or password",
            AuthError,
        ),
        (grpc.StatusCode.INTERNAL, "boom", EtcdError),
    ],
)
def test_rpc_errors_translate_to_specific_exceptions(
    code: grpc.StatusCode, details: str, expected: type[EtcdError]
) -> None:
    err = from_rpc_error(_rpc_error(code, details), "http://m0:2379")
    assert type(err) is expected
    assert err.endpoint == "http://m0:2379" and err.code == code.name and err.details == details


def test_only_grpc_level_failures_drop_the_channel() -> None:
    assert is_transport_failure(_rpc_error(grpc.StatusCode.UNAVAILABLE, "Connection refused"))
    assert is_transport_failure(_rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline"))
    assert not is_transport_failure(
        _rpc_error(grpc.StatusCode.UNAVAILABLE, "etcdserver: no leader")
    )


def _stream() -> SnapshotStream:
    return SnapshotStream(client=None, endpoint="http://m0:2379", chunk_timeout=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("split", [1, 7, 31, 32, 33, 4096])
def test_snapshot_trailer_verified_across_any_chunking(split: int) -> None:
    db = bytes(range(256)) * 40
    data = db + hashlib.sha256(db).digest()
    stream = _stream()
    for i in range(0, len(data), split):
        stream._feed(data[i : i + split])
    stream._verify()
    assert stream.sha256 == hashlib.sha256(data).hexdigest() and stream.size == len(data)


@given(st.binary(max_size=300), st.lists(st.integers(0, 80), max_size=12))
def test_one_hash_pass_gives_both_digests_for_any_chunk_boundaries(
    db: bytes, cuts: list[int]
) -> None:
    data = db + hashlib.sha256(db).digest()
    stream, at = _stream(), 0
    for n in [*cuts, len(data)]:
        stream._feed(data[at : at + n])
        at += n
    stream._verify()
    assert stream.sha256 == hashlib.sha256(data).hexdigest() and stream.size == len(data)


@pytest.mark.parametrize("cut", [0, 1, 32, 100])
def test_truncated_or_corrupt_snapshot_is_refused(cut: int) -> None:
    db = b"x" * 1000
    data = db + hashlib.sha256(db).digest()
    stream = _stream()
    stream._feed(data[: len(data) - cut] if cut else data.replace(b"x", b"y", 1))
    with pytest.raises(SnapshotIntegrityError):
        stream._verify()
    assert stream.sha256 is None


def test_endpoints_given_as_a_list_become_a_tuple() -> None:
    config = EtcdConfig(endpoints=["http://a:2379"])  # type: ignore[arg-type]
    assert config.endpoints == ("http://a:2379",)
    hash(config)
