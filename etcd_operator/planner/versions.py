"""etcd version arithmetic: which version changes a rolling restart may make."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> Version | None:
    """`3.5.17`, `v3.5.17` or `3.6.0-rc.1` (suffix ignored); None when not a version."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    return Version(int(match[1]), int(match[2]), int(match[3]))


def same_version(a: str, b: str) -> bool:
    """Equal as versions (`v3.5.1` == `3.5.1`); falls back to string equality."""
    pa, pb = parse_version(a), parse_version(b)
    if pa is None or pb is None:
        return a.strip() == b.strip()
    return pa == pb


class VersionChange(StrEnum):
    NONE = "None"
    PATCH = "Patch"  # same minor, up or down: etcd supports both
    MINOR_UPGRADE = "MinorUpgrade"  # exactly one minor up
    # Exactly one minor down: etcd only allows it as the rollback of an unfinished upgrade
    # (while some member still runs the lower minor, so the cluster version never moved).
    MINOR_ROLLBACK = "MinorRollback"
    BLOCKED = "Blocked"  # two or more minors down, skipped minor, major change, unparseable


def version_change(current: str, desired: str) -> VersionChange:
    """Classify moving one member from `current` to `desired`."""
    cur, want = parse_version(current), parse_version(desired)
    if cur is None or want is None:
        return VersionChange.NONE if current.strip() == desired.strip() else VersionChange.BLOCKED
    if cur == want:
        return VersionChange.NONE
    if cur.major != want.major:
        return VersionChange.BLOCKED
    if cur.minor == want.minor:
        return VersionChange.PATCH
    if want.minor == cur.minor + 1:
        return VersionChange.MINOR_UPGRADE
    if want.minor == cur.minor - 1:
        return VersionChange.MINOR_ROLLBACK
    return VersionChange.BLOCKED


def change_allowed(current: str, desired: str) -> bool:
    """Allowed whatever the rest of the cluster runs: no change, a patch change or +1 minor."""
    return version_change(current, desired) in (
        VersionChange.NONE,
        VersionChange.PATCH,
        VersionChange.MINOR_UPGRADE,
    )


def same_minor(a: str, b: str) -> bool:
    pa, pb = parse_version(a), parse_version(b)
    return pa is not None and pb is not None and (pa.major, pa.minor) == (pb.major, pb.minor)
