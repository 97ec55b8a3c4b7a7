"""Member names, ordinals and quorum arithmetic: the small pure helpers the shell shares."""

from __future__ import annotations

MAX_REPLICAS = 9
"""The largest cluster the operator manages (etcd itself advises against more than 7 voters)."""


def member_name(cluster: str, ordinal: int) -> str:
    """The stable name of the member at `ordinal`: its pod, its PVC and its etcd name."""
    if ordinal < 0:
        raise ValueError(f"ordinal must be >= 0, got {ordinal}")
    return f"{cluster}-{ordinal}"


def ordinal_of(name: str, cluster: str | None = None) -> int | None:
    """The ordinal of a member name, or None when `name` is not `<cluster>-<n>`.

    Without `cluster` only the `-<n>` suffix is checked. Leading zeros are rejected so that
    every ordinal has exactly one name.
    """
    prefix, sep, digits = name.rpartition("-")
    if not sep or not prefix or not digits.isascii() or not digits.isdigit():
        return None
    if digits != str(int(digits)):
        return None
    if cluster is not None and prefix != cluster:
        return None
    return int(digits)


def quorum(voters: int) -> int:
    """How many voters must be healthy for the cluster to commit anything."""
    if voters < 0:
        raise ValueError(f"voters must be >= 0, got {voters}")
    return voters // 2 + 1


def cluster_token(cluster: str, uid: str) -> str:
    """The `--initial-cluster-token`: unique per custom resource, so that a cluster recreated
    under the same name never mistakes an old member for one of its own."""
    return f"{cluster}-{uid}"
