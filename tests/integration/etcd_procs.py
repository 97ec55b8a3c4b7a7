"""Real etcd clusters as local processes on 127.0.0.1 (helpers for the fixtures in conftest).

Binaries: ``ETCD_BIN_DIR`` (a directory with etcd, etcdctl, etcdutl) when set, which lets a
developer pin one build; otherwise every etcd version that ``localcluster.build.ensure_binaries()``
provides, each test running once per version. Without either the tests are skipped.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etcd_operator.etcd import Credentials, EtcdClient, EtcdConfig, TLSConfig


@dataclass(frozen=True)
class EtcdBinarySet:
    version: str
    etcd: Path
    etcdctl: Path
    etcdutl: Path


def binary_sets() -> list[EtcdBinarySet] | str:
    """The etcd builds to test against, or why there are none."""
    bin_dir = os.environ.get("ETCD_BIN_DIR")
    if bin_dir:
        d = Path(bin_dir)
        version = subprocess.run(
            [str(d / "etcd"), "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[2]
        return [EtcdBinarySet(version, d / "etcd", d / "etcdctl", d / "etcdutl")]
    try:
        build: Any = importlib.import_module("localcluster.build")
    except ModuleNotFoundError as e:
        if e.name not in ("localcluster.build", "localcluster"):
            raise
        return "no etcd binaries: set ETCD_BIN_DIR or provide localcluster.build.ensure_binaries()"
    built: Any = build.ensure_binaries()
    return [
        EtcdBinarySet(str(version), Path(b.etcd), Path(b.etcdctl), Path(b.etcdutl))
        for version, b in built.etcd_versions.items()
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class EtcdProcess:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    client_scheme: str = "http"
    proc: subprocess.Popen[bytes] | None = None
    peer_scheme: str = "http"
    flags: tuple[str, ...] = ()  # this member's own, after the cluster's extra_flags

    @property
    def client_url(self) -> str:
        return f"{self.client_scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.peer_scheme}://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class LocalEtcdCluster:
    """etcd members as child processes; each test gets its own cluster and ports."""

    bins: EtcdBinarySet
    root: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    members: dict[str, EtcdProcess] = field(default_factory=dict)
    extra_flags: tuple[str, ...] = ()
    # Client TLS: the servers get extra_flags with their certificates; the client this.
    client_tls: TLSConfig | None = None
    credentials: Credentials | None = None

    def new_member(self, name: str) -> EtcdProcess:
        data = self.root / name
        scheme = "https" if self.client_tls else "http"
        member = EtcdProcess(
            name, free_port(), free_port(), data, self.root / f"{name}.log", scheme
        )
        self.members[name] = member
        return member

    def start(self, member: EtcdProcess, initial_cluster: str, state: str) -> None:
        args = [
            str(self.bins.etcd),
            f"--name={member.name}",
            f"--data-dir={member.data_dir}",
            f"--listen-client-urls={member.client_url}",
            f"--advertise-client-urls={member.client_url}",
            f"--listen-peer-urls={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.token}",
            # Short raft timers keep elections and leader transfers quick in tests.
            "--heartbeat-interval=50",
            "--election-timeout=500",
            "--log-level=warn",
            *self.extra_flags,
            *member.flags,
        ]
        log = member.log_path.open("ab")
        member.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start_initial(self, size: int) -> None:
        new = [self.new_member(f"m{i}") for i in range(size)]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in new)
        for m in new:
            self.start(m, initial, "new")

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(m.client_url for m in self.members.values())

    def config(self, **overrides: Any) -> EtcdConfig:
        settings: dict[str, Any] = {
            "dial_timeout": 2.0,
            "request_timeout": 3.0,
            "tls": self.client_tls,
            "credentials": self.credentials,
        }
        settings.update(overrides)
        return EtcdConfig(endpoints=settings.pop("endpoints", self.endpoints), **settings)

    def signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.members[name].proc
        assert proc is not None
        proc.send_signal(sig)

    def freeze(self, name: str) -> None:
        """SIGSTOP a member and wait until the kernel has stopped it (delivery is async)."""
        proc = self.members[name].proc
        assert proc is not None
        proc.send_signal(signal.SIGSTOP)
        stat = Path(f"/proc/{proc.pid}/stat")
        deadline = time.monotonic() + 5
        # field 3 of /proc/PID/stat (after the parenthesised command) is the state
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, f"{name} did not stop"
            time.sleep(0.01)

    def thaw(self, name: str) -> None:
        self.signal(name, signal.SIGCONT)

    def stop(self, name: str) -> None:
        member = self.members[name]
        if member.proc is None:
            return
        if member.proc.poll() is None:
            member.proc.send_signal(signal.SIGCONT)  # a frozen process cannot handle SIGTERM
            member.proc.terminate()
            try:
                member.proc.wait(10)
            except subprocess.TimeoutExpired:
                member.proc.kill()
                member.proc.wait()
        member.proc = None

    def stop_all(self) -> None:
        """Teardown: SIGKILL, since the data is thrown away and a graceful stop of every
        member at once makes each wait for peers that are going away too."""
        for m in self.members.values():
            if m.proc is not None and m.proc.poll() is None:
                m.proc.kill()
        for m in self.members.values():
            if m.proc is not None:
                m.proc.wait()
                m.proc = None

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for m in self.members.values():
            if m.log_path.exists():
                tail = m.log_path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {m.name} ---\n" + "\n".join(tail))
        return "\n".join(out)

    async def wait_healthy(self, client: EtcdClient, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while True:
            health = await client.health_all(self.endpoints_running())
            if all(h.healthy for h in health):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster not healthy: {health}\n{self.log_tail()}")
            for m in self.members.values():
                if m.proc is not None and m.proc.poll() is not None:
                    raise AssertionError(f"{m.name} exited:\n{self.log_tail()}")
            await asyncio.sleep(0.2)

    def endpoints_running(self) -> tuple[str, ...]:
        return tuple(m.client_url for m in self.members.values() if m.running)
