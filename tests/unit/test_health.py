"""Liveness from watch freshness: a stuck watch trips it, an idle one never does."""

from __future__ import annotations

from etcd_operator.health import WatchFreshness

A = ("ns", "a")
B = ("ns", "b")


def test_idle_clusters_never_trip_it() -> None:
    fresh = WatchFreshness(stall_after=60, started=0)
    fresh.event(A, "5")
    for now in range(0, 3600, 15):
        fresh.listed({A: "5"}, float(now))
        assert fresh.problem(float(now)) is None


def test_a_version_the_watch_never_delivers_trips_it_after_the_stall_time() -> None:
    fresh = WatchFreshness(stall_after=60, started=0)
    fresh.event(A, "5")
    fresh.listed({A: "6", B: "1"}, 10)  # a changed, b created: the watch saw neither
    assert fresh.problem(70) is None
    fresh.listed({A: "6", B: "1"}, 71)
    problem = fresh.problem(71)
    assert problem is not None and "ns/a" in problem
    # The watch catches up (or the operator restarted): live again.
    fresh.event(A, "6")
    fresh.event(B, "1")
    assert fresh.problem(72) is None


def test_a_watch_ahead_of_a_list_is_not_stuck() -> None:
    fresh = WatchFreshness(stall_after=60, started=0)
    fresh.event(A, "7")
    fresh.listed({A: "6"}, 10)  # the list was served from an older cache
    fresh.listed({A: "7"}, 20)
    assert fresh.problem(200) is not None  # no list since 20
    fresh.listed({A: "7"}, 200)
    assert fresh.problem(200) is None


def test_lists_failing_for_the_stall_time_trip_it() -> None:
    fresh = WatchFreshness(stall_after=60, started=0)
    assert fresh.problem(59) is None
    assert fresh.problem(61) is not None  # never listed since start
    fresh.listed({}, 61)
    assert fresh.problem(100) is None
    assert fresh.problem(122) is not None


def test_a_deleted_cluster_is_forgotten() -> None:
    fresh = WatchFreshness(stall_after=60, started=0)
    fresh.listed({A: "1"}, 0)
    fresh.event(A, "2", deleted=True)
    fresh.listed({}, 30)
    assert fresh.problem(80) is None
