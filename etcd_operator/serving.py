"""The operator's HTTP endpoints: /healthz, /readyz, /leaderz (health port) and /metrics
(metrics port).

- /healthz (liveness): the watch streams are live (etcd_operator.health) and, with leader
  election, the Lease was read or written recently.
- /readyz (readiness): the replica can do its job: the leader, or a standby that follows
  the Lease. Not "leader only": a Deployment's rolling update waits for new pods to be
  Ready, and a standby never is leader until the old leader goes, so the rollout would stall.
- /leaderz: 200 only on the replica holding the Lease (for humans and scripts; the
  `etcd_operator_leader` series says the same to Prometheus).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from lightkube import ALL_NS, AsyncClient

from etcd_operator import metrics, rbac
from etcd_operator.health import Key, WatchFreshness
from etcd_operator.kube import EtcdClusterResource

rbac.needs(EtcdClusterResource, "list", why="liveness: compare listed versions with the watch's")

log = logging.getLogger(__name__)

HEALTH_PORT_ENV = "ETCD_OPERATOR_HEALTH_PORT"
METRICS_PORT_ENV = "ETCD_OPERATOR_METRICS_PORT"
STALL_AFTER_ENV = "ETCD_OPERATOR_WATCH_STALL_SECONDS"
DEFAULT_STALL_AFTER = 120.0


@dataclass
class Probes:
    """What the endpoints answer from (set up at startup)."""

    freshness: WatchFreshness
    is_leader: Callable[[], bool]
    # Seconds since the Lease was last read or written; None: no leader election.
    lease_age: Callable[[], float | None]
    lease_limit: float


def _text(ok: bool, message: str) -> web.Response:
    return web.Response(status=200 if ok else 503, text=message + "\n")


def health_app(probes: Probes) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        problem = probes.freshness.problem(time.monotonic())
        age = probes.lease_age()
        if problem is None and age is not None and age > probes.lease_limit:
            problem = f"the leader-election Lease was not reachable for {age:.0f}s"
        return _text(problem is None, problem or "ok")

    async def readyz(_: web.Request) -> web.Response:
        if probes.is_leader():
            return _text(True, "leader")
        age = probes.lease_age()
        ok = age is not None and age <= probes.lease_limit
        return _text(ok, "standby" if ok else "not following the Lease")

    async def leaderz(_: web.Request) -> web.Response:
        leader = probes.is_leader()
        return _text(leader, "leader" if leader else "standby")

    app = web.Application()
    app.add_routes(
        [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/leaderz", leaderz)]
    )
    return app


def metrics_app() -> web.Application:
    async def serve(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response

    app = web.Application()
    app.add_routes([web.get("/metrics", serve)])
    return app


async def start_site(app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def watch_lists(
    kube: AsyncClient,
    freshness: WatchFreshness,
    namespaces: tuple[str, ...],
    period: float,
) -> None:
    """Every `period`: list the EtcdClusters (each watched namespace, or all) for
    `freshness`; failures only leave the last success older."""
    while True:
        try:
            versions: dict[Key, str] = {}
            for namespace in namespaces or (ALL_NS,):
                async for item in kube.list(EtcdClusterResource, namespace=namespace):
                    meta = item.metadata
                    if meta and meta.name and meta.namespace and meta.resourceVersion:
                        versions[(meta.namespace, meta.name)] = meta.resourceVersion
            freshness.listed(versions, time.monotonic())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("liveness: listing EtcdClusters: %s", e)
        await asyncio.sleep(period)
