"""Run this project's operator against a localcluster, as a host process.

Tests and the demo use it; it is what `etcd-operator run` in a Deployment does, minus
the pod. The operator reaches members by their cluster DNS names, which localcluster
makes resolvable on the host.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from lightkube import Client, KubeConfig
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from localcluster.config import StateDir

# The image name maps to this virtualenv's entry point on localcluster's node.
OPERATOR_IMAGE = "ghcr.io/etcd-operator/etcd-operator:dev"


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


class OperatorProcess:
    """`etcd-operator run` in its own session; logs go to the state directory."""

    def __init__(self, state: StateDir, name: str = "operator") -> None:
        self.state = state
        self.log_path = state.logs / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        if self.alive:
            return
        self.state.logs.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = {
            **os.environ,
            "KUBECONFIG": str(self.state.kubeconfig),
            "ETCD_OPERATOR_IMAGE": OPERATOR_IMAGE,
            "PYTHONUNBUFFERED": "1",
        }
        entry = Path(sys.prefix) / "bin" / "etcd-operator"
        self._proc = subprocess.Popen(
            [str(entry), "run", "--standalone", "--verbose"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to finish what it was doing."""
        self.stop(sig=signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()
