"""A pod's securityContext as a kubelet applies it to a process (pure decisions).

What is enforced: the effective uid/gid (container securityContext over the pod's; no uid
means the image's default user, root here, as no image declares another), supplementary
groups (``supplementalGroups`` then ``fsGroup``), ``runAsNonRoot`` (refused before start, as
a kubelet does), ``allowPrivilegeEscalation: false`` (no_new_privs) and ``capabilities``
(``drop: [ALL]`` empties the bounding set, so even a root process keeps only what ``add``
lists; a non-root process has no capabilities anyway once its uid changes). Volumes get
``fsGroup`` ownership like a kubelet's SetVolumeOwnership (see ``needs_ownership_change``).

Not enforceable for a process that shares the host's filesystem: ``readOnlyRootFilesystem``
(there is no container root filesystem to mount read-only), ``seccompProfile``,
``seLinuxOptions``, ``appArmorProfile``, ``procMount`` and ``privileged``; they are accepted
and ignored.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from localcluster.node.envs import ConfigError

Obj = dict[str, Any]
ROOT = 0
# A kubelet's masks (pkg/volume/volume_linux.go): what fsGroup ownership adds to modes.
RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110


@dataclass(frozen=True)
class Identity:
    """Who a container's process runs as, and what it may gain."""

    uid: int = ROOT
    gid: int = ROOT
    groups: tuple[int, ...] = ()
    no_new_privs: bool = False
    # None: keep the capabilities a root process has; otherwise the bounding set.
    capabilities: tuple[str, ...] | None = None

    @property
    def is_default(self) -> bool:
        """Plain root with nothing dropped: run the program as the agent runs it."""
        return self == Identity()


def _effective(pod: Obj, container: Obj, key: str) -> Any:
    """A container's securityContext field, falling back to the pod's."""
    own = (container.get("securityContext") or {}).get(key)
    if own is not None:
        return own
    return (pod["spec"].get("securityContext") or {}).get(key)


def pod_label(pod: Obj) -> str:
    """How a kubelet names a pod in messages (format.Pod): name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def identity(pod: Obj, container: Obj) -> Identity:
    """The process identity of a container; ConfigError where a kubelet refuses to start it
    (reported as CreateContainerConfigError)."""
    uid = _effective(pod, container, "runAsUser")
    if _effective(pod, container, "runAsNonRoot"):
        where = f'(pod: "{pod_label(pod)}", container: {container["name"]})'
        if uid is None:
            # The kubelet asks the image for its user; every local image runs as root.
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
        if int(uid) == ROOT:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
    gid = _effective(pod, container, "runAsGroup")
    pod_sc = pod["spec"].get("securityContext") or {}
    groups = [int(g) for g in pod_sc.get("supplementalGroups") or []]
    if pod_sc.get("fsGroup") is not None:
        groups.append(int(pod_sc["fsGroup"]))
    sc = container.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    dropped = {str(c).upper() for c in caps.get("drop") or []}
    return Identity(
        uid=ROOT if uid is None else int(uid),
        gid=ROOT if gid is None else int(gid),
        groups=tuple(dict.fromkeys(groups)),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        capabilities=_kept_capabilities(caps.get("add") or []) if "ALL" in dropped else None,
    )


def _kept_capabilities(added: Iterable[str]) -> tuple[str, ...]:
    names = (str(c).lower() for c in added)
    return tuple(sorted({n if n.startswith("cap_") else f"cap_{n}" for n in names}))


def switch_argv(who: Identity, setpriv: str = "setpriv") -> list[str]:
    """The command prefix that becomes `who` and execs the rest (util-linux setpriv)."""
    if who.is_default:
        return []
    argv = [setpriv, f"--reuid={who.uid}", f"--regid={who.gid}"]
    argv.append(f"--groups={','.join(map(str, who.groups))}" if who.groups else "--clear-groups")
    if who.no_new_privs:
        argv.append("--no-new-privs")
    if who.capabilities is not None:
        bounding = ",".join(["-all", *(f"+{c[4:]}" for c in who.capabilities)])
        argv += [f"--bounding-set={bounding}", "--inh-caps=-all"]
    return [*argv, "--"]


def fs_group(pod: Obj) -> tuple[int | None, bool]:
    """The pod's fsGroup and whether a matching volume root may be left alone
    (fsGroupChangePolicy OnRootMismatch)."""
    sc = pod["spec"].get("securityContext") or {}
    group = sc.get("fsGroup")
    on_mismatch = sc.get("fsGroupChangePolicy") == "OnRootMismatch"
    return (None if group is None else int(group)), on_mismatch


def needs_ownership_change(gid: int, mode: int, fs_group: int, read_only: bool) -> bool:
    """Whether a volume root (stat's gid and mode) lacks fsGroup ownership (a kubelet's
    requiresPermissionChange): another group, missing group bits, or no setgid."""
    if gid != fs_group or not stat.S_ISDIR(mode):
        return True
    wanted = (RO_MASK if read_only else RW_MASK) | EXEC_MASK
    return (stat.S_IMODE(mode) & wanted) != wanted or not mode & stat.S_ISGID


def owned_mode(mode: int, read_only: bool) -> int:
    """The permission bits of a file or directory once it belongs to the fsGroup."""
    mask = RO_MASK if read_only else RW_MASK
    if stat.S_ISDIR(mode):
        mask |= stat.S_ISGID | EXEC_MASK
    return stat.S_IMODE(mode) | mask


def hidden_roots(
    paths: Iterable[str], searchable: Callable[[str], bool]
) -> dict[str, tuple[str, ...]]:
    """Image paths an unprivileged process cannot reach, by the directory that hides them.

    A path is hidden by its topmost ancestor others may not search (/root is 0700); the
    value lists the paths to show under it (none nested in another)."""
    out: dict[str, list[str]] = {}
    kept = sorted({str(PurePosixPath(p)) for p in paths})
    for path in kept:
        if any(PurePosixPath(path).is_relative_to(o) and path != o for o in kept):
            continue
        parents = reversed(PurePosixPath(path).parents)
        blocked = next((str(a) for a in parents if str(a) != "/" and not searchable(str(a))), None)
        if blocked is not None:
            out.setdefault(blocked, []).append(path)
    return {root: tuple(shown) for root, shown in out.items()}
