"""Running one container as a local process group inside the pod's namespaces.

Each container runs as ``ip netns exec <pod netns> unshare --mount --uts`` and a tiny
shell prelude that bind-mounts the pod's volumes at their mountPaths, sets the hostname
and working directory, then ``exec``s the program. Every step execs, so the recorded pid
is the program itself and the leader of its own process group.

A container with a securityContext ends the chain with ``setpriv`` (its uid, gid, groups,
no_new_privs, capabilities), after the prelude has done what needs root. Image files that an
unprivileged user cannot reach on the host (the etcd binaries and Python under /root, mode
0700) are shown to it as an image would: in the container's own mount namespace a tmpfs
replaces the hiding directory and holds bind mounts of exactly the image's paths; the host's
directories keep their modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.node.security import Identity, switch_argv


def _tool(name: str) -> str:
    return shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") or name


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    netns: str
    mounts: list[tuple[Path, str, bool]]
    workdir: str | None
    hostname: str
    log_file: Path
    pid_file: Path
    # Who the program runs as (the container's effective securityContext).
    identity: Identity = field(default_factory=Identity)
    # Directory hiding image paths -> those paths (security.hidden_roots), and an empty
    # directory where their replacement is assembled before it is moved into place.
    image_view: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scratch: Path | None = None


def _bind(source: Path, target: str) -> list[str]:
    mkdir, mount, touch = _tool("mkdir"), _tool("mount"), _tool("touch")
    src, dst = shlex.quote(str(source)), shlex.quote(target)
    if source.is_dir():
        make = f"{mkdir} -p {dst}"
    else:
        make = f"{mkdir} -p $(dirname {dst}) && {touch} {dst}"
    return [make, f"{mount} --bind {src} {dst}"]


def _image_view(view: Mapping[str, tuple[str, ...]], scratch: Path) -> list[str]:
    """Each hiding directory becomes a searchable tmpfs holding only the image's paths."""
    mount, lines = _tool("mount"), []
    for hidden, shown in view.items():
        lines.append(f"{mount} -t tmpfs -o mode=0755 lc-image {shlex.quote(str(scratch))}")
        for path in shown:
            lines += _bind(Path(path), str(scratch / os.path.relpath(path, hidden)))
        lines.append(f"{mount} --move {shlex.quote(str(scratch))} {shlex.quote(hidden)}")
    return lines


def prelude(
    mounts: Sequence[tuple[Path, str, bool]],
    hostname: str,
    workdir: str | None,
    image_view: Mapping[str, tuple[str, ...]] | None = None,
    scratch: Path | None = None,
) -> str:
    """Shell run inside the new mount/UTS namespace before exec'ing the program."""
    mkdir, mount = _tool("mkdir"), _tool("mount")
    lines = ["set -e"]
    for source, target, read_only in mounts:
        lines += _bind(source, target)
        if read_only:
            lines.append(f"{mount} -o remount,bind,ro {shlex.quote(target)}")
    if image_view and scratch is not None:
        lines += _image_view(image_view, scratch)
    if hostname:
        lines.append(f"{_tool('hostname')} {shlex.quote(hostname)} || true")
    if workdir:
        lines.append(f"{mkdir} -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)}")
    lines.append('exec "$@"')
    return "\n".join(lines)


def user_prefix(identity: Identity) -> list[str]:
    return switch_argv(identity, _tool("setpriv"))


def wrapped_argv(launch: Launch) -> list[str]:
    return [
        _tool("ip"), "netns", "exec", launch.netns,
        _tool("unshare"), "--mount", "--uts", "--propagation", "private", "--",
        _tool("sh"), "-c",
        prelude(launch.mounts, launch.hostname, launch.workdir, launch.image_view, launch.scratch),
        "sh", *user_prefix(launch.identity), *launch.argv,
    ]  # fmt: skip


async def start(launch: Launch) -> asyncio.subprocess.Process:
    launch.log_file.parent.mkdir(parents=True, exist_ok=True)
    launch.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with launch.log_file.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *wrapped_argv(launch),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=launch.env,
            cwd="/",
            start_new_session=True,
        )
    launch.pid_file.write_text(str(proc.pid))
    return proc


def exit_code(returncode: int) -> int:
    """A signal death as a kubelet reports it: 128 + signal number."""
    return 128 - returncode if returncode < 0 else returncode


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, wait up to grace seconds, then SIGKILL it."""
    if proc.returncode is None:
        kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=max(grace, 0.0))
    # Also reaps helpers the program left behind in its group.
    kill_group(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), timeout=5)


async def exec_in(
    pid: int,
    argv: Sequence[str],
    env: Mapping[str, str],
    limit: float,
    identity: Identity | None = None,
) -> tuple[int, str]:
    """Run a command in a running container's namespaces (exec probes, preStop hooks),
    as the container's user."""
    proc = await asyncio.create_subprocess_exec(
        _tool("nsenter"), "--target", str(pid), "--net", "--mount", "--uts", "--",
        *user_prefix(identity or Identity()), *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=limit)
    except TimeoutError:
        kill_group(proc.pid)
        await proc.wait()
        return -1, f"command timed out after {limit}s"
    return proc.returncode or 0, out.decode(errors="replace")[-1024:]
