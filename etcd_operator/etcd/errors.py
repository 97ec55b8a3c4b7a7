"""Exceptions of the etcd layer, translated from gRPC status codes and etcd's error texts.

etcd reports most conditions as a gRPC code plus a fixed message
(go.etcd.io/etcd/api/v3/v3rpc/rpctypes/error.go); several share a code
(FAILED_PRECONDITION covers "not leader", "learner not ready", ...), so the message
decides. Every exception carries the endpoint that answered (or failed to).
"""

from __future__ import annotations

from typing import Any

import grpc


class EtcdError(Exception):
    """Any failure of an etcd call."""

    def __init__(self, message: str, *, endpoint: str | None = None, code: str | None = None):
        super().__init__(f"{endpoint}: {message}" if endpoint else message)
        self.endpoint = endpoint
        self.code = code  # gRPC status code name, when the error came from gRPC
        self.details = message


class EtcdUnavailable(EtcdError):
    """The member or cluster cannot serve the request now; retrying later may succeed.

    For a mutating call the outcome is unknown unless the subclass says otherwise:
    re-observe before retrying.
    """


class EtcdUnreachable(EtcdUnavailable):
    """No connection could be made to the member, so the request was never sent."""


class ProposalDropped(EtcdUnavailable):
    """etcd dropped the request before raft took it (e.g. while leadership moves): it surely
    had no effect, so it may be sent again."""


class EtcdTimeout(EtcdUnavailable):
    """The call did not finish within its deadline (hung, partitioned or overloaded member)."""


class NoLeader(EtcdUnavailable):
    """The member knows no leader (lost quorum, or an election is in progress)."""


class MemberNotFound(EtcdError):
    """The member ID is not in the cluster."""


class MemberExists(EtcdError):
    """A member with this ID or these peer URLs is already in the cluster."""


class MemberNotLearner(EtcdError):
    """Promote was asked for a member that is already a voter."""


class LearnerNotReady(EtcdError):
    """The learner has not caught up with the leader's log yet; promote later."""


class TooManyLearners(EtcdError):
    """etcd allows one learner at a time (by default); another is already in the cluster."""


class NotLeader(EtcdError):
    """The request must be sent to the leader (MoveLeader) and this member is not."""


class BadLeaderTransferee(EtcdError):
    """MoveLeader target is not a started voting member."""


class NotSupportedForLearner(EtcdError):
    """Learners serve only Status and serializable reads; ask a voter."""


class ReconfigurationRejected(EtcdError):
    """etcd's own quorum guard refused a membership change (strict reconfig check).

    "not enough started members" or "unhealthy cluster": adding or removing that member
    now could lose quorum.
    """


class NoSpace(EtcdError):
    """The NOSPACE alarm is active; the cluster accepts only reads and deletes."""


class RevisionCompacted(EtcdError):
    """The requested revision has been compacted (e.g. HashKV at an old revision)."""


class FutureRevision(EtcdError):
    """The requested revision is newer than the member's current revision."""


class AuthError(EtcdError):
    """Authentication failed or the user lacks permission."""


class AuthNotEnabled(EtcdError):
    """Authenticate was called while etcd's authentication is off (no token is needed)."""


class UserExists(EtcdError):
    """UserAdd of a user etcd already has."""


class RootUserMissing(EtcdError):
    """AuthEnable refused: user `root` does not exist or lacks role `root`."""


class DowngradeRefused(EtcdError):
    """etcd refused the downgrade target (not one minor below the cluster version)."""


class DowngradeInProgress(EtcdError):
    """A downgrade is already enabled."""


class NoDowngradeInProgress(EtcdError):
    """Cancel of a downgrade while none is enabled."""


class SnapshotIntegrityError(EtcdError):
    """The snapshot stream ended without a valid sha256 trailer."""


_BY_MESSAGE: tuple[tuple[str, type[EtcdError]], ...] = (
    ("etcdserver: member not found", MemberNotFound),
    ("etcdserver: member ID already exist", MemberExists),
    ("etcdserver: Peer URLs already exists", MemberExists),
    # Checked before "can only promote a learner member", which is a prefix of it.
    ("etcdserver: can only promote a learner member which is in sync", LearnerNotReady),
    ("etcdserver: can only promote a learner member", MemberNotLearner),
    ("etcdserver: too many learner members", TooManyLearners),
    ("etcdserver: not leader", NotLeader),
    ("etcdserver: bad leader transferee", BadLeaderTransferee),
    ("etcdserver: rpc not supported for learner", NotSupportedForLearner),
    (
        "etcdserver: re-configuration failed due to not enough started members",
        ReconfigurationRejected,
    ),
    ("etcdserver: unhealthy cluster", ReconfigurationRejected),
    ("etcdserver: no leader", NoLeader),
    ("etcdserver: raft proposal dropped", ProposalDropped),
    ("raft proposal dropped", ProposalDropped),  # etcd 3.5 sends it without the prefix
    ("etcdserver: mvcc: database space exceeded", NoSpace),
    ("etcdserver: mvcc: required revision has been compacted", RevisionCompacted),
    ("etcdserver: mvcc: required revision is a future revision", FutureRevision),
    ("etcdserver: authentication is not enabled", AuthNotEnabled),
    ("etcdserver: user name already exists", UserExists),
    ("etcdserver: root user does not exist", RootUserMissing),
    ("etcdserver: root user does not have root role", RootUserMissing),
    ("etcdserver: invalid downgrade target version", DowngradeRefused),
    ("etcdserver: cluster has a downgrade job in progress", DowngradeInProgress),
    ("etcdserver: no inflight downgrade job", NoDowngradeInProgress),
)


# Auth failures etcd reports as INVALID_ARGUMENT or FAILED_PRECONDITION rather than
# UNAUTHENTICATED/PERMISSION_DENIED.
_AUTH_MESSAGES = (
    "etcdserver: authentication failed",
    "etcdserver: user name is empty",
    "etcdserver: user name not found",
    # etcd 3.5's maintenance calls (HashKV) return the auth store's own error as UNKNOWN.
    "auth: user name is empty",
    "auth: permission denied",
    "auth: invalid auth token",
)


def is_transport_failure(error: grpc.aio.AioRpcError) -> bool:
    """True when gRPC itself failed (no answer from etcd), so the channel may be stale."""
    code = error.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return True
    details = error.details() or ""
    return bool(code == grpc.StatusCode.UNAVAILABLE and not details.startswith("etcdserver:"))


def from_rpc_error(error: grpc.aio.AioRpcError, endpoint: str) -> EtcdError:
    """Translate a gRPC error into the most specific EtcdError."""
    status: Any = error.code()
    code_name = str(getattr(status, "name", status))
    details = str(error.details() or "")
    for prefix, cls in _BY_MESSAGE:
        if details.startswith(prefix):
            return cls(details, endpoint=endpoint, code=code_name)
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return EtcdTimeout(details or "deadline exceeded", endpoint=endpoint, code=code_name)
    if status == grpc.StatusCode.UNAVAILABLE:
        # Transport failures ("failed to connect to all addresses", "Connection refused")
        # mean nothing reached etcd; etcd's own UNAVAILABLE texts ("request timed out",
        # "leader changed", "server stopped") mean the request may have been applied.
        if not details.startswith("etcdserver:") and _looks_like_connect_failure(details):
            return EtcdUnreachable(details, endpoint=endpoint, code=code_name)
        return EtcdUnavailable(details, endpoint=endpoint, code=code_name)
    if status == grpc.StatusCode.CANCELLED:
        # The channel was closed under the call (another call found it broken).
        return EtcdUnavailable(details or "cancelled", endpoint=endpoint, code=code_name)
    if status in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return AuthError(details, endpoint=endpoint, code=code_name)
    if details.startswith(_AUTH_MESSAGES):
        return AuthError(details, endpoint=endpoint, code=code_name)
    return EtcdError(details or code_name, endpoint=endpoint, code=code_name)


def _looks_like_connect_failure(details: str) -> bool:
    lowered = details.lower()
    return any(
        marker in lowered
        for marker in (
            "failed to connect",
            "connection refused",
            "connect failed",
            "dns resolution failed",
            "no route to host",
            "name resolution",
        )
    )
