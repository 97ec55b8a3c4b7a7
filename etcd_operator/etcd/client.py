"""The operator's etcd client: membership, status, health, maintenance, snapshot, KV.

Built on grpc.aio and the etcd v3 protobuf stubs bundled with ``aetcd`` (``aetcd.rpc``);
aetcd's own ``Client`` is not used because it dials one plaintext ``host:port`` and
hides fields the operator needs (learner flags, raft applied index, db size in use).

Two kinds of calls:

* cluster-wide (member list/add/promote/remove, alarms, put/get): sent to the configured
  endpoints in turn until one answers. A call is moved to the next endpoint only when it
  surely was not applied (no connection, or a learner refused it), or when it is a read.
* per-member (status, health, hash_kv, defragment, snapshot, move_leader's target): sent
  to exactly one endpoint over that endpoint's own channel.

Every method that talks to etcd takes an optional ``timeout`` (seconds) overriding the
configured one. It becomes the gRPC deadline, which etcd receives and uses to cancel its
own work, hence a parameter rather than the caller wrapping ``asyncio.timeout`` (ASYNC109).

Usage::

    async with EtcdClient(EtcdConfig(endpoints=("http://10.0.0.1:2379",))) as etcd:
        members = await etcd.member_list()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

import grpc
from aetcd import rpc as pb

from etcd_operator.etcd._channels import Connection, open_connection, resolve, wait_ready
from etcd_operator.etcd._status_extras import status_extras
from etcd_operator.etcd.config import EtcdConfig, parse_endpoint
from etcd_operator.etcd.errors import (
    AuthError,
    AuthNotEnabled,
    EtcdError,
    EtcdTimeout,
    EtcdUnavailable,
    EtcdUnreachable,
    NotLeader,
    NotSupportedForLearner,
    ProposalDropped,
    SnapshotIntegrityError,
    from_rpc_error,
    is_transport_failure,
)
from etcd_operator.etcd.types import (
    Alarm,
    AlarmType,
    AuthStatus,
    ClusterMembers,
    EndpointHealth,
    HashKV,
    KeyValue,
    Member,
    MemberAdded,
    MemberStatus,
)

# How long one member's dropped proposals are sent again before trying another member.
_RESEND_FOR = 1.0
# Key read by health checks; it need not exist (etcdctl endpoint health uses the same).
_HEALTH_KEY = b"health"
# Extra time over the gRPC deadline before asyncio gives up on a call, in case the gRPC
# deadline itself is not honoured (it always should be; this keeps the bound absolute).
_GRACE = 1.0
_SHA256_SIZE = 32
_MOVE_LEADER_MIN_TIMEOUT = 10.0


class EtcdClient:
    """Async client for one etcd cluster. Use as ``async with``, or call ``close()``.

    Safe for concurrent use from tasks of one event loop. Channels are opened lazily per
    endpoint and reused; ``close()`` closes them all.
    """

    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self._conns: dict[str, Connection] = {}
        # The endpoint that answered last goes first next time, so one dead member does not
        # cost a dial timeout on every cluster-wide call.
        self._preferred: str = config.endpoints[0]
        # Which member answered at each endpoint (from response headers), so that a member
        # is not asked to remove itself: it would stop before answering, leaving the
        # outcome unknown.
        self._member_at: dict[str, int] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        loop = asyncio.get_running_loop()
        # A channel of another (finished) loop cannot be awaited from here; drop it.
        await asyncio.gather(
            *(c.channel.close() for c in conns if c.loop is loop), return_exceptions=True
        )

    # ---- membership -------------------------------------------------------------------

    async def member_list(self, *, linearizable: bool = True) -> ClusterMembers:
        """The member list. Linearizable by default so a partitioned member's stale view
        is never returned (etcd >= 3.5; older servers ignore the flag)."""
        resp = await self._any(
            "cluster", "MemberList", pb.MemberListRequest(linearizable=linearizable), read=True
        )
        return _cluster_members(resp.header, resp.members)

    async def local_member_list(
        self,
        endpoint: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ClusterMembers:
        """The member list as the member at ``endpoint`` knows it from its own log, answered
        without a quorum (serializable): what a survivor of a lost quorum still knows."""
        request = pb.MemberListRequest(linearizable=False)
        resp = await self._unary(endpoint, "cluster", "MemberList", request, timeout)
        return _cluster_members(resp.header, resp.members)

    async def member_add(self, peer_urls: Sequence[str], *, learner: bool = True) -> MemberAdded:
        """Add a member (a learner unless ``learner=False``); start its process afterwards with
        ``--initial-cluster-state=existing`` and an initial cluster built from ``.members``."""
        if isinstance(peer_urls, str):
            raise TypeError("peer_urls must be a sequence of URLs, not one string")
        request = pb.MemberAddRequest(peerURLs=list(peer_urls), isLearner=learner)
        resp = await self._any("cluster", "MemberAdd", request, read=False)
        return MemberAdded(
            member=_member(resp.member), members=_cluster_members(resp.header, resp.members)
        )

    async def member_promote(self, member_id: int) -> ClusterMembers:
        """Promote a learner to voter. Raises LearnerNotReady until it has caught up."""
        resp = await self._any(
            "cluster", "MemberPromote", pb.MemberPromoteRequest(ID=member_id), read=False
        )
        return _cluster_members(resp.header, resp.members)

    async def member_update(self, member_id: int, peer_urls: Sequence[str]) -> ClusterMembers:
        """Register other peer URLs for a member (e.g. https instead of http); its peers dial
        the new URLs from then on. Setting the URLs it already has changes nothing."""
        if isinstance(peer_urls, str):
            raise TypeError("peer_urls must be a sequence of URLs, not one string")
        request = pb.MemberUpdateRequest(ID=member_id, peerURLs=list(peer_urls))
        resp = await self._any("cluster", "MemberUpdate", request, read=False)
        return _cluster_members(resp.header, resp.members)

    async def member_remove(self, member_id: int) -> ClusterMembers:
        """Remove a member. Sent through another member when the client knows which endpoint
        is which (any earlier call to that endpoint tells it, e.g. ``statuses()``)."""
        resp = await self._any(
            "cluster",
            "MemberRemove",
            pb.MemberRemoveRequest(ID=member_id),
            read=False,
            avoid_member=member_id,
        )
        return _cluster_members(resp.header, resp.members)

    async def move_leader(self, target_id: int, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Transfer leadership to ``target_id`` (a started voter).

        MoveLeader is only accepted by the current leader, so the leader is found first
        among the configured endpoints (by Status), then among the leader's advertised
        client URLs. No-op when the target already leads. Raises NotLeader if leadership
        moved between finding the leader and asking it; re-observe and retry.

        The leader answers only once the transfer is done, which etcd allows to take its
        request timeout plus two election timeouts, so the default deadline here is at least
        10 s.
        """
        statuses = await self.statuses()
        known = [s for s in statuses.values() if isinstance(s, MemberStatus) and s.has_leader]
        if not known:
            errors = [s for s in statuses.values() if isinstance(s, EtcdError)]
            raise EtcdUnavailable(
                "no endpoint knows a leader: " + "; ".join(str(e) for e in errors)
            )
        leader_id = max(known, key=lambda s: s.raft_term).leader
        if leader_id == target_id:
            return
        candidates = [s.endpoint for s in known if s.member_id == leader_id]
        if not candidates:
            leader = (await self.member_list()).by_id(leader_id)
            candidates = list(leader.client_urls) if leader else []
        if not candidates:
            raise NotLeader(f"leader {leader_id:x} is not reachable through any known endpoint")
        await self._unary(
            candidates[0],
            "maintenance",
            "MoveLeader",
            pb.MoveLeaderRequest(targetID=target_id),
            timeout or max(self.config.request_timeout, _MOVE_LEADER_MIN_TIMEOUT),
        )

    # ---- per-member status and maintenance ----------------------------------------------

    async def status(self, endpoint: str, *, timeout: float | None = None) -> MemberStatus:  # noqa: ASYNC109
        """Maintenance.Status answered by the member at ``endpoint`` (works on learners)."""
        resp = await self._unary(endpoint, "maintenance", "Status", pb.StatusRequest(), timeout)
        extras = status_extras(resp.SerializeToString())
        return MemberStatus(
            endpoint=endpoint,
            member_id=int(resp.header.member_id),
            cluster_id=int(resp.header.cluster_id),
            version=str(resp.version),
            db_size=int(resp.dbSize),
            db_size_in_use=int(resp.dbSizeInUse),
            leader=int(resp.leader),
            raft_index=int(resp.raftIndex),
            raft_term=int(resp.raftTerm),
            raft_applied_index=int(resp.raftAppliedIndex),
            errors=tuple(str(e) for e in resp.errors),
            is_learner=bool(resp.isLearner),
            revision=int(resp.header.revision),
            storage_version=extras.storage_version,
            downgrade_enabled=extras.downgrade_enabled,
            downgrade_target=extras.downgrade_target,
        )

    async def statuses(
        self, endpoints: Iterable[str] | None = None
    ) -> dict[str, MemberStatus | EtcdError]:
        """Status of several members concurrently; a failed member maps to its error."""
        targets = list(self.config.endpoints if endpoints is None else endpoints)
        results = await asyncio.gather(*(self.status(e) for e in targets), return_exceptions=True)
        out: dict[str, MemberStatus | EtcdError] = {}
        for endpoint, result in zip(targets, results, strict=True):
            if isinstance(result, MemberStatus | EtcdError):
                out[endpoint] = result
            else:
                raise result
        return out

    async def health(self, endpoint: str, *, timeout: float | None = None) -> EndpointHealth:  # noqa: ASYNC109
        """Whether the member at ``endpoint`` serves quorum reads (never raises EtcdError).

        A voter is healthy when a linearizable read through it succeeds: etcd confirms its
        read index with a quorum of voters first, so this proves the member is connected to
        a working majority with a leader, not only that its process answers. Learners cannot
        serve linearizable reads; for them a serializable read plus a known leader is the
        best available signal. Alarms are reported in ``status.errors``; judging them is left
        to the caller.
        """
        start = time.monotonic()
        try:
            status = await self.status(endpoint, timeout=timeout)
        except EtcdError as e:
            return EndpointHealth(endpoint, False, time.monotonic() - start, str(e), None)
        if not status.has_leader:
            return EndpointHealth(endpoint, False, time.monotonic() - start, "no leader", status)
        request = pb.RangeRequest(
            key=_HEALTH_KEY, limit=1, keys_only=True, serializable=status.is_learner
        )
        error: str | None = None
        try:
            await self._unary(endpoint, "kv", "Range", request, timeout)
        except AuthError as e:
            # Permission denied still means the read went through consensus.
            if e.code != "PERMISSION_DENIED":
                error = str(e)
        except EtcdError as e:
            error = str(e)
        return EndpointHealth(endpoint, error is None, time.monotonic() - start, error, status)

    async def health_all(
        self, endpoints: Iterable[str] | None = None
    ) -> tuple[EndpointHealth, ...]:
        targets = list(self.config.endpoints if endpoints is None else endpoints)
        return tuple(await asyncio.gather(*(self.health(e) for e in targets)))

    async def hash_kv(
        self,
        endpoint: str,
        *,
        revision: int = 0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> HashKV:
        """HashKV of one member's keyspace up to ``revision`` (0 = its latest)."""
        resp = await self._unary(
            endpoint, "maintenance", "HashKV", pb.HashKVRequest(revision=revision), timeout
        )
        return HashKV(
            endpoint=endpoint,
            member_id=int(resp.header.member_id),
            hash=int(resp.hash),
            compact_revision=int(resp.compact_revision),
            revision=revision or int(resp.header.revision),
        )

    async def defragment(self, endpoint: str, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Defragment one member. The member blocks reads and writes while it runs, so
        defragment followers first and one at a time (the planner decides)."""
        await self._unary(
            endpoint,
            "maintenance",
            "Defragment",
            pb.DefragmentRequest(),
            timeout or self.config.defragment_timeout,
        )

    async def compact(self, revision: int, *, physical: bool = True) -> None:
        """Discard the key history before ``revision`` on every member (through raft).

        ``physical``: answer only once the member that took the request has removed the old
        revisions from its backend, so the space shows as free (``db_size_in_use``) there;
        the others follow as they apply it. Raises RevisionCompacted when ``revision`` is
        already compacted (compacting again changes nothing), FutureRevision when it is
        newer than the store. Allowed under NOSPACE.
        """
        request = pb.CompactionRequest(revision=revision, physical=physical)
        # Safe to send again elsewhere: a repeated compaction only says it was done.
        await self._any("kv", "Compact", request, read=True)

    async def alarms(self) -> tuple[Alarm, ...]:
        """Active alarms of all members (the alarm list is replicated through raft)."""
        request = pb.AlarmRequest(action=pb.AlarmRequest.GET, memberID=0, alarm=pb.NONE)
        resp = await self._any("maintenance", "Alarm", request, read=True)
        return tuple(_alarm(a) for a in resp.alarms)

    async def disarm_alarms(self, alarms: Iterable[Alarm] | None = None) -> tuple[Alarm, ...]:
        """Deactivate the given alarms (default: all active ones); returns those disarmed.

        Disarming NOSPACE without first freeing space (compact + defragment) only makes
        etcd raise it again at the next write over quota.
        """
        todo = tuple(await self.alarms() if alarms is None else alarms)
        disarmed: list[Alarm] = []
        for alarm in todo:
            request = pb.AlarmRequest(
                action=pb.AlarmRequest.DEACTIVATE, memberID=alarm.member_id, alarm=alarm.alarm.value
            )
            # Deactivating is idempotent, so it may be retried on another endpoint.
            resp = await self._any("maintenance", "Alarm", request, read=True)
            disarmed.extend(_alarm(a) for a in resp.alarms)
        return tuple(disarmed)

    # ---- downgrade (etcd >= 3.6) -----------------------------------------------------------

    async def downgrade_validate(self, version: str) -> str:
        """Whether etcd would downgrade to ``version`` (one minor below the cluster version);
        returns the cluster version. Refusals raise DowngradeRefused with etcd's reason."""
        return await self._downgrade(pb.DowngradeRequest.VALIDATE, version)

    async def downgrade_enable(self, version: str) -> str:
        """Start the downgrade to ``version``: etcd lowers the cluster version (and then each
        member its storage version) to that minor, after which members may be restarted with
        the older binary. Raises DowngradeInProgress when one is already enabled."""
        return await self._downgrade(pb.DowngradeRequest.ENABLE, version)

    async def downgrade_cancel(self, endpoint: str | None = None) -> str:
        """Cancel the enabled downgrade (etcd 3.6 answers success when none is); the cluster
        version goes back up once every member runs the higher minor again. ``endpoint``: a
        member that knows the downgrade API (3.6), since a 3.5 member may never answer
        (found with real etcd 3.5.35)."""
        return await self._downgrade(pb.DowngradeRequest.CANCEL, "", endpoint)

    async def _downgrade(self, action: int, version: str, endpoint: str | None = None) -> str:
        request = pb.DowngradeRequest(action=action, version=version)
        if endpoint is not None:
            resp = await self._unary(endpoint, "maintenance", "Downgrade", request, None)
        else:
            # Not a read: ENABLE and CANCEL are proposals, moved on only when surely not applied.
            resp = await self._any("maintenance", "Downgrade", request, read=False)
        return str(resp.version)

    def snapshot(self, endpoint: str, *, chunk_timeout: float | None = None) -> SnapshotStream:
        """Stream a snapshot of one member's backend; see SnapshotStream."""
        return SnapshotStream(self, endpoint, chunk_timeout or self.config.snapshot_chunk_timeout)

    # ---- authentication ------------------------------------------------------------------

    async def auth_status(self) -> AuthStatus:
        """Whether etcd enforces authentication: etcd's own record, replicated through raft."""
        resp = await self._any("auth", "AuthStatus", pb.AuthStatusRequest(), read=True)
        return AuthStatus(enabled=bool(resp.enabled), revision=int(resp.authRevision))

    async def user_add(self, name: str, password: str) -> None:
        """Add a user with a password; raises UserExists when etcd already has it."""
        request = pb.AuthUserAddRequest(name=name, password=password)
        await self._any("auth", "UserAdd", request, read=False)

    async def user_change_password(self, name: str, password: str) -> None:
        """Set a user's password (idempotent: the same password again changes nothing)."""
        request = pb.AuthUserChangePasswordRequest(name=name, password=password)
        await self._any("auth", "UserChangePassword", request, read=True)

    async def user_grant_role(self, user: str, role: str) -> None:
        """Grant ``role`` to ``user``; etcd ignores a grant the user already has."""
        request = pb.AuthUserGrantRoleRequest(user=user, role=role)
        await self._any("auth", "UserGrantRole", request, read=True)

    async def auth_enable(self) -> None:
        """Turn authentication on (idempotent). etcd requires user ``root`` with role
        ``root`` first (RootUserMissing otherwise)."""
        await self._any("auth", "AuthEnable", pb.AuthEnableRequest(), read=True)

    async def auth_disable(self) -> None:
        """Turn authentication off (idempotent; needs the root user while it is on)."""
        await self._any("auth", "AuthDisable", pb.AuthDisableRequest(), read=True)

    # ---- KV (tests, demo, health) -------------------------------------------------------

    async def put(self, key: bytes | str, value: bytes | str) -> int:
        """Put one key; returns the revision of the write."""
        request = pb.PutRequest(key=_bytes(key), value=_bytes(value))
        resp = await self._any("kv", "Put", request, read=False)
        return int(resp.header.revision)

    async def revision(self) -> int:
        """The store's current revision (a linearizable read of one key's header)."""
        request = pb.RangeRequest(key=b"\0", limit=1, keys_only=True)
        resp = await self._any("kv", "Range", request, read=True)
        return int(resp.header.revision)

    async def key_count(
        self, revision: int, *, serializable: bool = False, endpoint: str | None = None
    ) -> int:
        """How many keys the store held at ``revision`` (a count-only Range over every key);
        from ``endpoint`` if given. RevisionCompacted / FutureRevision when etcd cannot say."""
        request = pb.RangeRequest(
            key=b"\0",
            range_end=b"\0",
            count_only=True,
            revision=revision,
            serializable=serializable,
        )
        if endpoint is None:
            resp = await self._any("kv", "Range", request, read=True)
        else:
            resp = await self._unary(endpoint, "kv", "Range", request, None)
        return int(resp.count)

    async def get(
        self, key: bytes | str, *, serializable: bool = False, endpoint: str | None = None
    ) -> KeyValue | None:
        """Read one key, linearizable unless ``serializable``; from ``endpoint`` if given."""
        request = pb.RangeRequest(key=_bytes(key), serializable=serializable)
        if endpoint is None:
            resp = await self._any("kv", "Range", request, read=True)
        else:
            resp = await self._unary(endpoint, "kv", "Range", request, None)
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return KeyValue(
            key=bytes(kv.key),
            value=bytes(kv.value),
            create_revision=int(kv.create_revision),
            mod_revision=int(kv.mod_revision),
            version=int(kv.version),
            lease=int(kv.lease),
        )

    # ---- plumbing -----------------------------------------------------------------------

    async def _connection(self, endpoint: str) -> Connection:
        loop = asyncio.get_running_loop()
        conn = self._conns.get(endpoint)
        if conn is None or conn.loop is not loop:
            target = parse_endpoint(endpoint, tls=self.config.tls is not None)
            conn = open_connection(self.config, endpoint, await resolve(target))
            self._conns[endpoint] = conn
        return conn

    async def forget(self, endpoint: str) -> None:
        """Drop the connection to ``endpoint``: the next call dials it again, resolving anew
        (e.g. it answered as another member than the one it should reach)."""
        conn = self._conns.get(endpoint)
        if conn is not None:
            await self._evict(conn)

    async def _evict(self, conn: Connection) -> None:
        if self._conns.get(conn.endpoint) is conn:
            del self._conns[conn.endpoint]
        # Closing a broken channel must not mask the error that made us close it.
        with contextlib.suppress(Exception):
            await conn.channel.close()

    async def connect(self, endpoint: str) -> Connection:
        """A ready (and, with credentials, authenticated) connection to ``endpoint``."""
        conn = await self._connection(endpoint)
        try:
            await wait_ready(conn, self.config.dial_timeout)
        except EtcdUnreachable:
            await self._evict(conn)
            raise
        if self.config.credentials is not None and conn.metadata is None:
            await self._authenticate(conn)
        return conn

    async def _authenticate(self, conn: Connection) -> None:
        creds = self.config.credentials
        assert creds is not None
        async with conn.auth_lock:
            if conn.metadata is not None:
                return
            request = pb.AuthenticateRequest(name=creds.username, password=creds.password)
            try:
                try:
                    resp = await self._invoke(
                        conn, "auth", "Authenticate", request, None, auth=False
                    )
                except NotSupportedForLearner:
                    resp = await self._authenticate_elsewhere(conn.endpoint, request)
            except AuthNotEnabled:
                # Nothing to authenticate against: call without a token until etcd asks for
                # one (see _unary), so credentials may be configured before auth is enabled.
                conn.metadata = ()
                return
            conn.metadata = (("token", str(resp.token)),)

    async def _authenticate_elsewhere(self, learner: str, request: Any) -> Any:
        """A token for a learner, from another member. A learner refuses Authenticate (it
        goes through raft) but applies the raft log, tokens included, so a token a voter hands
        out is valid at the learner too (simple and JWT tokens alike)."""
        failures: list[EtcdError] = []
        for endpoint in self.config.endpoints:
            if endpoint == learner:
                continue
            try:
                conn = await self._connection(endpoint)
                await wait_ready(conn, self.config.dial_timeout)
                return await self._invoke(conn, "auth", "Authenticate", request, None, auth=False)
            except (EtcdUnreachable, NotSupportedForLearner, EtcdUnavailable) as e:
                failures.append(e)
        raise NotSupportedForLearner(
            "no voter to authenticate through for learner: " + "; ".join(str(e) for e in failures),
            endpoint=learner,
        )

    async def _invoke(
        self,
        conn: Connection,
        service: str,
        method: str,
        request: Any,
        deadline: float | None,
        *,
        auth: bool = True,
    ) -> Any:
        deadline = deadline or self.config.request_timeout
        call = getattr(conn.stub(service), method)
        try:
            async with asyncio.timeout(deadline + _GRACE):
                return await call(
                    request, timeout=deadline, metadata=conn.metadata if auth else None
                )
        except grpc.aio.AioRpcError as e:
            if is_transport_failure(e):
                await self._evict(conn)
            raise from_rpc_error(e, conn.endpoint) from e
        except TimeoutError:
            await self._evict(conn)
            raise EtcdTimeout(f"{method} took over {deadline}s", endpoint=conn.endpoint) from None

    async def _resend_dropped(
        self, conn: Connection, service: str, method: str, request: Any, deadline: float | None
    ) -> Any:
        """Send again what etcd dropped before raft took it (a leadership transfer drops every
        proposal for a moment), backing off, for up to a second; a member that keeps dropping
        (stopping, or cut off from the leader) is left for another (see `_any`)."""
        give_up = time.monotonic() + min(deadline or self.config.request_timeout, _RESEND_FOR)
        pause = 0.02
        while True:
            try:
                return await self._invoke(conn, service, method, request, deadline)
            except ProposalDropped:
                if time.monotonic() + pause > give_up:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)

    async def _unary(
        self, endpoint: str, service: str, method: str, request: Any, deadline: float | None
    ) -> Any:
        conn = await self.connect(endpoint)
        try:
            resp = await self._resend_dropped(conn, service, method, request, deadline)
        except AuthError as e:
            # Get a (new) token once: simple tokens expire when idle, and a connection made
            # while auth was off has none.
            tokenless = conn.metadata == ()
            if self.config.credentials is None or not (
                tokenless or "invalid auth token" in e.details
            ):
                raise
            conn.metadata = None
            conn = await self.connect(endpoint)
            resp = await self._resend_dropped(conn, service, method, request, deadline)
        header = getattr(resp, "header", None)
        if header is not None and header.member_id:
            self._member_at[endpoint] = int(header.member_id)
        return resp

    async def _any(
        self,
        service: str,
        method: str,
        request: Any,
        *,
        read: bool,
        avoid_member: int | None = None,
    ) -> Any:
        """Send to the configured endpoints in turn until one answers.

        Moves on only when the request surely had no effect (no connection; a learner
        refused it) or when it is a read (``read=True``: safe to repeat). Worst case is
        ``len(endpoints) * (dial_timeout + request_timeout)``.
        """
        endpoints = list(self.config.endpoints)
        if self._preferred in endpoints:
            endpoints.remove(self._preferred)
            endpoints.insert(0, self._preferred)
        if avoid_member is not None:
            # Stable sort: endpoints of that member last, the others keep their order.
            endpoints.sort(key=lambda e: self._member_at.get(e) == avoid_member)
        failures: list[EtcdError] = []
        for endpoint in endpoints:
            try:
                resp = await self._unary(endpoint, service, method, request, None)
            except (EtcdUnreachable, NotSupportedForLearner, ProposalDropped) as e:
                failures.append(e)
                continue
            except EtcdUnavailable as e:
                if not read:
                    raise
                failures.append(e)
                continue
            self._preferred = endpoint
            return resp
        kinds = {type(e) for e in failures}
        # Keep the specific class when every endpoint failed the same way (e.g. NoLeader).
        cls: type[EtcdError] = kinds.pop() if len(kinds) == 1 else EtcdUnavailable
        if cls is NotSupportedForLearner:
            cls = EtcdUnavailable
        raise cls(f"{method} failed on every endpoint: " + "; ".join(str(e) for e in failures))


class SnapshotStream:
    """An async iterator of snapshot chunks from one member, verified at the end.

    etcd sends the bbolt database in chunks, then its sha256 as a final 32-byte chunk; the
    chunks yielded are exactly that stream (what ``etcdctl snapshot save`` writes, and what
    ``etcdutl snapshot restore`` verifies). When the stream ends the trailer is checked and
    SnapshotIntegrityError is raised on mismatch, so a consumer that reached the end of
    ``async for`` without an error holds a complete snapshot. ``sha256`` is then the hex
    digest of everything yielded (for backup metadata) and ``size`` its length.

    Each chunk must arrive within ``chunk_timeout``; there is no total deadline, since a
    large database legitimately takes minutes. Use ``async with`` (or iterate to the end)
    so the gRPC call is cancelled when the consumer stops early.
    """

    def __init__(self, client: EtcdClient, endpoint: str, chunk_timeout: float) -> None:
        self._client = client
        self.endpoint = endpoint
        self._chunk_timeout = chunk_timeout
        self._call: Any = None
        self._done = False
        # One lazy watchdog timer instead of an asyncio.timeout per 32 KiB message (measured:
        # those cost a sixth of the stream's CPU, on the backup's critical path): it fires
        # about once per chunk_timeout and cancels the call only if the pending read has
        # waited that long; time the consumer spends between reads does not count.
        self._reading_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False
        # One pass over the bytes: the database's hash (all but the trailer); the whole
        # stream's is that hash's state extended by the trailer, taken at the end.
        self._db_hash = hashlib.sha256()
        self._tail = b""  # last bytes seen, held back from _db_hash until we know the end
        self.size = 0
        self.sha256: str | None = None
        self.remaining_bytes: int | None = None  # as last reported by etcd (progress)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    def cancel(self) -> None:
        if self._call is not None and not self._done:
            self._call.cancel()
        self._finish()

    def _finish(self) -> None:
        self._done = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watch(self) -> None:
        if self._done:
            self._watchdog = None
            return
        loop = asyncio.get_running_loop()
        since = self._reading_since
        if since is not None and loop.time() - since >= self._chunk_timeout:
            self._watchdog = None
            self._timed_out = True
            self._call.cancel()  # the pending read raises CancelledError: see __anext__
            return
        start = loop.time() if since is None else since
        self._watchdog = loop.call_at(start + self._chunk_timeout, self._watch)

    def _timeout(self) -> EtcdTimeout:
        return EtcdTimeout(f"no snapshot data for {self._chunk_timeout}s", endpoint=self.endpoint)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            if self._call is None:
                conn = await self._client.connect(self.endpoint)
                stub = conn.stub("maintenance")
                self._call = stub.Snapshot(pb.SnapshotRequest(), metadata=conn.metadata)
            self._reading_since = asyncio.get_running_loop().time()
            if self._watchdog is None:
                self._watch()
            msg = await self._call.read()
            self._reading_since = None
        except grpc.aio.AioRpcError as e:
            self.cancel()
            if self._timed_out:
                raise self._timeout() from None
            raise from_rpc_error(e, self.endpoint) from e
        except asyncio.CancelledError:
            self.cancel()
            if self._timed_out:  # the watchdog's cancel, not the task's
                raise self._timeout() from None
            raise
        except BaseException:
            self.cancel()
            raise
        if msg is grpc.aio.EOF:
            self._finish()
            self._verify()
            raise StopAsyncIteration
        blob = bytes(msg.blob)
        self.remaining_bytes = int(msg.remaining_bytes)
        self._feed(blob)
        return blob

    def _feed(self, blob: bytes) -> None:
        self.size += len(blob)
        if len(blob) >= _SHA256_SIZE:
            # No copy of the chunk: the held-back tail is now known to be database bytes.
            view = memoryview(blob)
            self._db_hash.update(self._tail)
            self._db_hash.update(view[:-_SHA256_SIZE])
            self._tail = bytes(view[-_SHA256_SIZE:])
            return
        data = self._tail + blob
        cut = max(len(data) - _SHA256_SIZE, 0)
        self._db_hash.update(data[:cut])
        self._tail = data[cut:]

    def _verify(self) -> None:
        if len(self._tail) != _SHA256_SIZE or self._db_hash.digest() != self._tail:
            raise SnapshotIntegrityError(
                f"snapshot sha256 trailer does not match its {self.size} bytes",
                endpoint=self.endpoint,
            )
        whole = self._db_hash.copy()
        whole.update(self._tail)
        self.sha256 = whole.hexdigest()


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _member(m: Any) -> Member:
    return Member(
        id=int(m.ID),
        name=str(m.name),
        peer_urls=tuple(str(u) for u in m.peerURLs),
        client_urls=tuple(str(u) for u in m.clientURLs),
        is_learner=bool(m.isLearner),
    )


def _cluster_members(header: Any, members: Any) -> ClusterMembers:
    return ClusterMembers(
        cluster_id=int(header.cluster_id),
        responder_id=int(header.member_id),
        members=tuple(_member(m) for m in members),
    )


def _alarm(a: Any) -> Alarm:
    return Alarm(member_id=int(a.memberID), alarm=AlarmType(int(a.alarm)))
