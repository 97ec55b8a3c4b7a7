"""The health and metrics endpoints, served for real on a local port."""

from __future__ import annotations

import time

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from etcd_operator import metrics
from etcd_operator.health import WatchFreshness
from etcd_operator.serving import Probes, health_app, metrics_app, start_site


async def _get(runner: web.AppRunner, path: str) -> tuple[int, str]:
    [site] = runner.sites
    assert isinstance(site, web.TCPSite)
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def test_readiness_is_leader_or_following_standby_and_liveness_the_watch() -> None:
    state = {"leader": False, "age": 1.0}
    fresh = WatchFreshness(stall_after=60, started=time.monotonic())
    probes = Probes(
        freshness=fresh,
        is_leader=lambda: bool(state["leader"]),
        lease_age=lambda: float(state["age"]),
        lease_limit=30,
    )
    runner = await start_site(health_app(probes), 0, host="127.0.0.1")
    try:
        assert (await _get(runner, "/readyz"))[0] == 200  # a following standby
        assert (await _get(runner, "/leaderz"))[0] == 503
        state["age"] = 31.0  # lost sight of the Lease
        assert (await _get(runner, "/readyz"))[0] == 503
        status, body = await _get(runner, "/healthz")
        assert status == 503 and "Lease" in body
        state.update(leader=True, age=0.5)
        assert (await _get(runner, "/leaderz"))[0] == 200
        assert (await _get(runner, "/healthz"))[0] == 200
        fresh.started -= 61  # never listed for longer than the stall time: unconfirmed
        status, body = await _get(runner, "/healthz")
        assert status == 503 and "no successful list" in body
    finally:
        await runner.cleanup()


async def test_metrics_are_served_in_the_text_format() -> None:
    metrics.set_leader(True)
    runner = await start_site(metrics_app(), 0, host="127.0.0.1")
    try:
        status, text = await _get(runner, "/metrics")
    finally:
        await runner.cleanup()
    assert status == 200
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert "etcd_operator_leader" in names
