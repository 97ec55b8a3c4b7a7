"""etcd versions and images the operator knows about.

One place for the default etcd version and for the image naming rule, so that the
CRD default, the example and the pod builder cannot disagree.
"""

from __future__ import annotations

import re

# The version a new EtcdCluster gets when `spec.version` is omitted. The lead keeps
# it in step with the etcd builds localcluster provides.
DEFAULT_ETCD_VERSION = "3.6.16"

# Upstream etcd release images: `gcr.io/etcd-development/etcd:v3.6.16`.
ETCD_IMAGE_REPOSITORY = "gcr.io/etcd-development/etcd"

# What `spec.version` accepts: an etcd v3 release, major.minor.patch, no suffix.
ETCD_VERSION_PATTERN = r"^3\.[0-9]+\.[0-9]+$"

_VERSION_RE = re.compile(ETCD_VERSION_PATTERN)

# etcd gained the /livez and /readyz endpoints (with the `non_learner` readiness
# check) in 3.5.11 and 3.6.0; older members only have /health.
_FIRST_WITH_LIVEZ_READYZ = (3, 5, 11)


def parse_version(version: str) -> tuple[int, int, int]:
    """`"3.6.16"` -> `(3, 6, 6)`; raises ValueError for anything `spec.version` rejects."""
    if not _VERSION_RE.match(version):
        raise ValueError(f"not an etcd version (want 3.MINOR.PATCH): {version!r}")
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


def etcd_image(version: str) -> str:
    """The upstream image of an etcd release: `gcr.io/etcd-development/etcd:v<version>`."""
    parse_version(version)
    return f"{ETCD_IMAGE_REPOSITORY}:v{version}"


def has_livez_readyz(version: str) -> bool:
    """Whether members of this version serve `/livez` and `/readyz`."""
    return parse_version(version) >= _FIRST_WITH_LIVEZ_READYZ
