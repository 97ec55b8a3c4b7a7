"""Run this project's operator against a localcluster, as a host process.

Tests and the demo use it; it is what `etcd-operator run` in a Deployment does, minus
the pod. The operator reaches members by their cluster DNS names, which localcluster
makes resolvable on the host. It acts with its ServiceAccount's token and exactly the RBAC
of deploy/ (or of the namespaced install when it watches only some namespaces), never
with localcluster's admin credentials (harness.identity).

Every operator started here is registered with localcluster as an extra process
(``localcluster.extras``: ``state.extras/<name>.pid``), with what it watches, whether
it is detached and which operator code it runs. The registration lets the demo find an
operator that already watches its namespace (two operators acting on one cluster would
fight), lets a detached operator be stopped from any later process, and lets
``python -m localcluster down`` stop them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from lightkube import Client, KubeConfig
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from harness import identity
from localcluster import extras
from localcluster.config import StateDir

# The image name maps to this virtualenv's entry point on localcluster's node.
OPERATOR_IMAGE = "ghcr.io/etcd-operator/etcd-operator:dev"
# Marks a registered extra process as an operator started here.
_RECORD_KIND = "etcd-operator"
# A detached operator whose token has less left than this is restarted with a fresh one.
TOKEN_MARGIN = 3600.0


def install_crds(kubeconfig: Path, timeout: float = 60.0) -> None:
    """Server-side apply the CRDs generated from the models, and wait until served."""
    from etcd_operator.api.crd import KINDS, crd

    client = Client(KubeConfig.from_file(kubeconfig), field_manager="etcd-operator-install")
    try:
        names = []
        for kind in KINDS:
            body = crd(kind)
            client.apply(CustomResourceDefinition.from_dict(body), force=True)  # type: ignore[call-overload]
            names.append(body["metadata"]["name"])
        deadline = time.monotonic() + timeout
        for name in names:
            while True:
                got = client.get(CustomResourceDefinition, name)
                conditions = (got.status.conditions if got.status else None) or []
                if any(c.type == "Established" and c.status == "True" for c in conditions):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {name} not established after {timeout}s")
                time.sleep(0.2)
    finally:
        client.close()


@dataclass(frozen=True)
class OperatorRecord:
    """A live operator process as its pid file describes it."""

    name: str
    pid: int
    namespaces: tuple[str, ...]  # empty: all namespaces
    detached: bool
    code: str  # fingerprint of the operator sources it was started from
    log_path: Path
    token_expires: float = 0.0  # Unix time its ServiceAccount token runs out

    def watches(self, namespace: str) -> bool:
        return not self.namespaces or namespace in self.namespaces


StartResult = Literal["started", "reused", "restarted"]


class OperatorProcess:
    """`etcd-operator run` in its own session; logs go to the state directory.

    By default the process belongs to this object: ``stop()`` (or the end of the test
    session that started it) ends it. With ``detach=True`` it outlives this Python
    process: ``start()`` reuses a detached operator of the same name that is still
    running (restarting it if it runs older operator code or watches other namespaces),
    and ``alive``/``stop()`` work from any later process, through the pid file.
    ``namespaces`` limits what the operator watches (default: all namespaces).
    """

    def __init__(
        self,
        state: StateDir,
        name: str = "operator",
        *,
        namespaces: Sequence[str] = (),
        detach: bool = False,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.state = state
        self.name = name
        self.namespaces = tuple(namespaces)
        self.detach = detach
        # More `etcd-operator run` flags and environment (leader election, ports).
        self.extra_args = tuple(extra_args)
        self.extra_env = dict(extra_env or {})
        self.log_path = state.logs / f"{name}.log"
        # What the last start() did, for callers that report it (the demo).
        self.last_start: StartResult | None = None
        # Who the operator acts as (set by start()).
        self.identity: identity.Identity | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.last_start = "reused"
            return
        result: StartResult = "started"
        if (record := self._detached_record()) is not None:
            if (
                record.namespaces == self.namespaces
                and record.code == code_fingerprint()
                and record.token_expires - time.time() > TOKEN_MARGIN
            ):
                self.last_start = "reused"
                return
            _terminate(self.state, record, signal.SIGTERM, timeout=20.0)
            result = "restarted"
        # The RBAC (re)applied and a fresh token at every start: deploy/ may have changed.
        acting_as = identity.operator_identity(self.state, self.name, self.namespaces)
        self.identity = acting_as
        self.state.logs.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = {
            **os.environ,
            "KUBECONFIG": str(acting_as.kubeconfig),
            "ETCD_OPERATOR_IMAGE": OPERATOR_IMAGE,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        entry = Path(sys.prefix) / "bin" / "etcd-operator"
        args = [str(entry), "run", "--standalone", "--verbose"]
        for namespace in self.namespaces:
            args += ["--namespace", namespace]
        args += self.extra_args
        self._proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        meta = {
            "kind": _RECORD_KIND,
            "namespaces": list(self.namespaces),
            "detached": self.detach,
            "code": code_fingerprint(),
            "token_expires": acting_as.expires,
        }
        extras.register(self.state, self.name, self._proc.pid, meta)
        if self.detach:
            # The child has its own copy of the log descriptor; keep none here.
            self._log.close()
            self._log = None
        self.last_start = result

    @property
    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._detached_record() is not None

    @property
    def pid(self) -> int | None:
        """The operator's pid while it runs (started here, or detached and recorded)."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        record = self._detached_record()
        return record.pid if record else None

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to finish what it was doing."""
        self.stop(sig=signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            extras.unregister(self.state, self.name, proc.pid)
        elif (record := self._detached_record()) is not None:
            # Started (detached) by another process: only the registration knows it.
            _terminate(self.state, record, sig, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _detached_record(self) -> OperatorRecord | None:
        """The live detached operator recorded under this name, if any. An attached one
        belongs to the process that started it (e.g. another test session): not ours."""
        record = _operator_record(self.state, extras.lookup(self.state, self.name))
        return record if record is not None and record.detached else None


def running_operators(state: StateDir) -> list[OperatorRecord]:
    """Every registered operator whose process still runs, attached or detached."""
    found = (_operator_record(state, r) for r in extras.registered(state))
    return [record for record in found if record is not None]


def code_fingerprint() -> str:
    """Changes whenever a source file of the operator does (a reused detached operator
    must not keep running code the user has since edited)."""
    spec = importlib.util.find_spec("etcd_operator")
    origin = spec.origin if spec else None
    digest = hashlib.sha256()
    if origin:
        root = Path(origin).parent
        for path in sorted(root.rglob("*.py")):
            with contextlib.suppress(OSError):
                st = path.stat()
                digest.update(f"{path.relative_to(root)}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return digest.hexdigest()[:16]


def _operator_record(state: StateDir, found: extras.Registration | None) -> OperatorRecord | None:
    """The operator a live registration describes, if it is one started here."""
    if found is None or found.meta.get("kind") != _RECORD_KIND:
        return None
    meta = found.meta
    return OperatorRecord(
        name=found.name,
        pid=found.pid,
        namespaces=tuple(meta.get("namespaces") or ()),
        detached=bool(meta.get("detached")),
        code=str(meta.get("code") or ""),
        log_path=state.logs / f"{found.name}.log",
        token_expires=float(meta.get("token_expires") or 0.0),
    )


def _terminate(state: StateDir, record: OperatorRecord, sig: int, timeout: float) -> None:
    """Stop an operator that is not our child, through its registration."""
    extras.terminate(state, extras.Registration(record.name, record.pid), sig, timeout)
