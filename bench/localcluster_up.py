"""Warm start of the localcluster control plane: seconds until the API is usable.

Binaries must be built already (not timed). Uses the default state directory
($LOCALCLUSTER_STATE_DIR) unless a control plane runs there already, in which
case a temporary state directory would clash on ports: then it reports the
running one and measures nothing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from localcluster import build, controlplane
from localcluster.config import StateDir


def main() -> None:
    binaries = build.ensure_binaries(progress=False)
    if controlplane.is_running(StateDir.default()):
        print("a control plane is already running; stop it to measure `up`")
        return
    root = Path(tempfile.mkdtemp(prefix="lc-bench-"))
    state = StateDir(root)
    try:
        for label in ("fresh state (new certs, empty etcd)", "restart (existing state)"):
            start = time.monotonic()
            controlplane.start(state, binaries)
            ready = time.monotonic() - start
            start = time.monotonic()
            controlplane.stop(state)
            print(
                f"control plane up, {label}: {ready:.1f}s  (stop: {time.monotonic() - start:.1f}s)"
            )
    finally:
        controlplane.stop(state)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
