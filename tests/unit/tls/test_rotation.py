"""CA rotation decision (tls.rotation): each phase from its records, and whole rotations
carried out one write at a time in any order a shell killed between writes could leave, with
nothing ever presented that someone does not trust."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from etcd_operator.tls.pki import BACKDATE, new_ca
from etcd_operator.tls.rotation import (
    PROPAGATION,
    LeafState,
    Phase,
    RotationSeen,
    Trigger,
    ca_due,
    decide,
    trust_of,
)

NOW = datetime(2026, 11, 30, tzinfo=UTC)
YEAR = timedelta(days=365)


def _seen(**changes: object) -> RotationSeen:
    idle = RotationSeen(
        authorities=1,
        ca_not_before=NOW - YEAR,
        ca_not_after=NOW + 9 * YEAR,
        leaves=[LeafState(True, True, NOW - YEAR)] * 4,
        members_trust=True,
        served=None,
        requested=None,
        handled=None,
        now=NOW,
    )
    return replace(idle, **changes)  # type: ignore[arg-type]


OLD_LEAF = LeafState(by_signer=False, bundle_current=True, issued_at=NOW - YEAR)
NEW_LEAF = LeafState(by_signer=True, bundle_current=True, issued_at=NOW - timedelta(hours=1))


def test_an_idle_cluster_stays_idle() -> None:
    decided = decide(_seen())
    assert decided.phase is Phase.IDLE and decided.start is None and not decided.retire


def test_a_new_annotation_value_starts_a_rotation_once() -> None:
    assert decide(_seen(requested="1")).start is Trigger.REQUESTED
    assert decide(_seen(requested="1", handled="0")).start is Trigger.REQUESTED
    assert decide(_seen(requested="1", handled="1")).start is None


def test_a_ca_in_the_last_fifth_of_its_life_rotates_on_its_own() -> None:
    ten_years = {"ca_not_before": NOW - 8 * YEAR, "ca_not_after": NOW + 2 * YEAR}
    assert decide(_seen(**ten_years)).start is Trigger.EXPIRING
    assert decide(_seen(ca_not_before=NOW - 7 * YEAR, ca_not_after=NOW + 3 * YEAR)).start is None
    assert ca_due(NOW - timedelta(hours=8), NOW + timedelta(hours=2), NOW)
    assert not ca_due(NOW - timedelta(hours=7), NOW + timedelta(hours=3), NOW)


def test_no_rotation_starts_while_certificates_are_being_issued() -> None:
    decided = decide(_seen(requested="1", renewal_pending=True))
    assert decided.start is None and decided.phase is Phase.IDLE


def test_each_phase_from_its_records() -> None:
    both = {"authorities": 2}
    stale = LeafState(by_signer=False, bundle_current=False, issued_at=NOW - YEAR)
    assert decide(_seen(**both, leaves=[stale, OLD_LEAF])).phase is Phase.DISTRIBUTING
    restarting = decide(_seen(**both, leaves=[OLD_LEAF], members_trust=False))
    assert restarting.phase is Phase.RESTARTING and not restarting.reissue_old
    reissuing = decide(_seen(**both, leaves=[OLD_LEAF, NEW_LEAF]))
    assert reissuing.phase is Phase.REISSUING and reissuing.reissue_old
    assert decide(_seen(**both, leaves=[NEW_LEAF], served=False)).phase is Phase.PRESENTING
    retiring = decide(_seen(**both, leaves=[NEW_LEAF], served=True))
    assert retiring.phase is Phase.RETIRING and retiring.retire
    # The old CA dropped: bundles and members follow, then idle.
    after = LeafState(by_signer=True, bundle_current=False, issued_at=NOW)
    assert decide(_seen(leaves=[after])).phase is Phase.DISTRIBUTING
    assert decide(_seen(leaves=[NEW_LEAF], members_trust=False)).phase is Phase.RESTARTING


def test_a_request_during_a_rotation_waits_for_it_to_end() -> None:
    decided = decide(_seen(authorities=2, leaves=[OLD_LEAF], members_trust=False, requested="2"))
    assert decided.start is None and decided.phase is Phase.RESTARTING


def test_without_a_probe_the_old_ca_goes_only_after_propagation() -> None:
    issued = NOW - timedelta(seconds=30)
    leaves = [replace(NEW_LEAF, issued_at=issued)]
    waiting = decide(_seen(authorities=2, leaves=leaves))
    assert waiting.phase is Phase.PRESENTING
    assert waiting.recheck_at == issued + BACKDATE + PROPAGATION
    later = decide(_seen(authorities=2, leaves=leaves, now=issued + BACKDATE + PROPAGATION))
    assert later.retire


def test_trust_digest_depends_on_the_cas_not_on_the_layout() -> None:
    one = new_ca("one", NOW).cert
    two = new_ca("two", NOW).cert
    assert trust_of([one + two]) == trust_of([one, two]) == trust_of([one + two, two])
    assert trust_of([one + two]).authorities == 2
    assert trust_of([one]) != trust_of([one + two])


# A whole rotation over a model of the records: CAs are numbers, a leaf is (signer, bundle), a
# pod records the bundle it started with. One write per step, in any order the decision allows.


@dataclass
class World:
    signer: int = 0
    bundle: tuple[int, ...] = (0,)
    handled: str | None = None
    leaves: dict[str, tuple[int, tuple[int, ...]]] = field(
        default_factory=lambda: {k: (0, (0,)) for k in ("peer", "server", "client", "operator")}
    )
    pods: list[tuple[int, ...]] = field(default_factory=lambda: [(0,)] * 3)
    # What members serve: a re-issued certificate reaches a member some writes later.
    served: dict[str, int] = field(default_factory=lambda: {"peer": 0, "server": 0})

    def mounted(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.leaves["peer"][1]) | set(self.leaves["server"][1])))

    def seen(self, requested: str | None) -> RotationSeen:
        return _seen(
            authorities=len(self.bundle),
            leaves=[
                LeafState(s == self.signer, b == self.bundle, NOW) for s, b in self.leaves.values()
            ],
            members_trust=all(p == self.mounted() for p in self.pods),
            served=all(v == self.signer for v in self.served.values()),
            requested=requested,
            handled=self.handled,
        )

    def check(self) -> None:
        """Nothing presented is refused: every pod trusts the CA of every certificate members
        and clients present, and every client trusts what members serve."""
        presented = {s for s, _ in self.leaves.values()} | set(self.served.values())
        for trusted in self.pods:
            assert presented <= set(trusted), (presented, trusted)
        for kind in ("client", "operator"):
            assert self.served["server"] in self.leaves[kind][1]


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_a_rotation_in_any_order_never_presents_an_untrusted_certificate(
    data: st.DataObject,
) -> None:
    world = World()
    requested = "1"
    finished = False
    for _ in range(200):
        world.check()
        decided = decide(world.seen(requested))
        # A member's volume catches up with its Secret at some point.
        lagging = [k for k in world.served if world.served[k] != world.leaves[k][0]]
        if lagging and data.draw(st.booleans()):
            kind = data.draw(st.sampled_from(lagging))
            world.served[kind] = world.leaves[kind][0]
            continue
        if decided.start is not None:
            world.signer += 1
            world.bundle = (*world.bundle, world.signer)
            world.handled = requested
        elif decided.retire:
            world.bundle = (world.signer,)
        elif decided.phase is Phase.DISTRIBUTING:
            stale = [k for k, (_, b) in world.leaves.items() if b != world.bundle]
            kind = data.draw(st.sampled_from(stale))
            world.leaves[kind] = (world.leaves[kind][0], world.bundle)
        elif decided.phase is Phase.RESTARTING:
            # The planner's rollout: one outdated pod restarts with what it mounts now.
            stale = [i for i, p in enumerate(world.pods) if p != world.mounted()]
            world.pods[data.draw(st.sampled_from(stale))] = world.mounted()
        elif decided.phase is Phase.REISSUING:
            old = [k for k, (s, _) in world.leaves.items() if s != world.signer]
            kind = data.draw(st.sampled_from(old))
            world.leaves[kind] = (world.signer, world.bundle)
        elif decided.phase is Phase.PRESENTING:
            kind = data.draw(st.sampled_from(lagging))
            world.served[kind] = world.leaves[kind][0]
        else:
            assert decided.phase is Phase.IDLE
            finished = True
            break
    assert finished
    assert world.bundle == (1,) and world.handled == "1"
    assert all(s == 1 and b == (1,) for s, b in world.leaves.values())
    assert world.pods == [(1,)] * 3
