"""Running one container as a local process group inside the pod's namespaces.

Each container runs as ``ip netns exec <pod netns> unshare --mount --uts`` and a tiny
shell prelude that bind-mounts the pod's volumes at their mountPaths, sets the hostname
and working directory, then ``exec``s the program. Every step execs, so the recorded pid
is the program itself and the leader of its own process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


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


def prelude(mounts: Sequence[tuple[Path, str, bool]], hostname: str, workdir: str | None) -> str:
    """Shell run inside the new mount/UTS namespace before exec'ing the program."""
    mkdir, mount, touch = _tool("mkdir"), _tool("mount"), _tool("touch")
    lines = ["set -e"]
    for source, target, read_only in mounts:
        src, dst = shlex.quote(str(source)), shlex.quote(target)
        if source.is_dir():
            lines.append(f"{mkdir} -p {dst}")
        else:
            lines.append(f"{mkdir} -p $(dirname {dst}) && {touch} {dst}")
        lines.append(f"{mount} --bind {src} {dst}")
        if read_only:
            lines.append(f"{mount} -o remount,bind,ro {dst}")
    if hostname:
        lines.append(f"{_tool('hostname')} {shlex.quote(hostname)} || true")
    if workdir:
        lines.append(f"{mkdir} -p {shlex.quote(workdir)} && cd {shlex.quote(workdir)}")
    lines.append('exec "$@"')
    return "\n".join(lines)


def wrapped_argv(launch: Launch) -> list[str]:
    return [
        _tool("ip"), "netns", "exec", launch.netns,
        _tool("unshare"), "--mount", "--uts", "--propagation", "private", "--",
        _tool("sh"), "-c", prelude(launch.mounts, launch.hostname, launch.workdir), "sh",
        *launch.argv,
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
    pid: int, argv: Sequence[str], env: Mapping[str, str], limit: float
) -> tuple[int, str]:
    """Run a command in a running container's namespaces (exec probes, preStop hooks)."""
    proc = await asyncio.create_subprocess_exec(
        _tool("nsenter"), "--target", str(pid), "--net", "--mount", "--uts", "--", *argv,
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
