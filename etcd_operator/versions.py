"""etcd versions: parsing, ordering, which changes a rolling restart may make, and images.

Standard library only, so that the API models, the planner and status all read versions
the same way. One place for the default etcd version and the image naming rule, so that the
CRD default, the example and the pod builder cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# The version a new EtcdCluster gets when `spec.version` is omitted. The lead keeps
# it in step with the etcd builds localcluster provides.
DEFAULT_ETCD_VERSION = "3.6.16"

# Upstream etcd release images: `gcr.io/etcd-development/etcd:v3.6.16`.
ETCD_IMAGE_REPOSITORY = "gcr.io/etcd-development/etcd"

# What `spec.version` accepts: an etcd v3 release, major.minor.patch, no suffix.
ETCD_VERSION_PATTERN = r"^3\.[0-9]+\.[0-9]+$"

_SPEC_VERSION = re.compile(ETCD_VERSION_PATTERN)
# What members and pods may report: an optional `v` and a pre-release or build suffix.
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


# etcd gained the /livez and /readyz endpoints (with the `non_learner` readiness
# check) in 3.5.11 and 3.6.0; older members only have /health.
_FIRST_WITH_LIVEZ_READYZ = Version(3, 5, 11)
_UNPARSEABLE = Version(0, 0, 0)


def parse_version(text: str) -> Version | None:
    """`3.5.17`, `v3.5.17` or `3.6.0-rc.1` (suffix ignored); None when not a version."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    return Version(int(match[1]), int(match[2]), int(match[3]))


def parse_spec_version(text: str) -> Version:
    """A version as `spec.version` accepts it; raises ValueError for anything else."""
    if not _SPEC_VERSION.match(text):
        raise ValueError(f"not an etcd version (want 3.MINOR.PATCH): {text!r}")
    major, minor, patch = (int(part) for part in text.split("."))
    return Version(major, minor, patch)


def version_key(text: str) -> Version:
    """Sort key of a reported version: by number, anything unparseable first."""
    return parse_version(text) or _UNPARSEABLE


def same_version(a: str, b: str) -> bool:
    """Equal as versions (`v3.5.1` == `3.5.1`); falls back to string equality."""
    pa, pb = parse_version(a), parse_version(b)
    if pa is None or pb is None:
        return a.strip() == b.strip()
    return pa == pb


def same_minor(a: str, b: str) -> bool:
    pa, pb = parse_version(a), parse_version(b)
    return pa is not None and pb is not None and (pa.major, pa.minor) == (pb.major, pb.minor)


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


def etcd_image(version: str) -> str:
    """The upstream image of an etcd release: `gcr.io/etcd-development/etcd:v<version>`."""
    parse_spec_version(version)
    return f"{ETCD_IMAGE_REPOSITORY}:v{version}"


# An image reference whose tag names an etcd release (`repo/etcd:v3.6.16`, `:3.6.16-custom`,
# optionally pinned by a digest after the tag). RE2 and Python alike (the CRD's CEL uses it).
IMAGE_TAG_SUFFIX_PATTERN = r"([-+_][^:/@]*)?(@[^@/]*)?$"
IMAGE_TAG_VERSION_PATTERN = r":v?[0-9]+[.][0-9]+[.][0-9]+" + IMAGE_TAG_SUFFIX_PATTERN
_IMAGE_TAG_VERSION = re.compile(r":(v?)([0-9]+[.][0-9]+[.][0-9]+)" + IMAGE_TAG_SUFFIX_PATTERN)


def image_version(image: str) -> str | None:
    """The etcd release an image's tag names (`3.6.16` for `repo/etcd:v3.6.16-x`), or None
    when the tag names none (a digest alone, `latest`, a custom tag)."""
    match = _IMAGE_TAG_VERSION.search(image)
    return match[2] if match else None


def image_with_version(image: str, version: str) -> str:
    """`image` for a member running `version`: when its tag names a release, the same
    repository and tag pattern with `version` in it (a pinned digest dropped, since it pins
    the other release); otherwise `image` unchanged (the operator cannot tell what it holds)."""
    match = _IMAGE_TAG_VERSION.search(image)
    if match is None or match[2] == version:
        return image
    return f"{image[: match.start()]}:{match[1]}{version}{match[3] or ''}"


def has_livez_readyz(version: str) -> bool:
    """Whether members of this version serve `/livez` and `/readyz`."""
    return parse_spec_version(version) >= _FIRST_WITH_LIVEZ_READYZ
