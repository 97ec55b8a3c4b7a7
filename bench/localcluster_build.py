"""Build time of the localcluster binaries: warm (cache hit) and, with --cold, cold.

Cold builds into a fresh binary cache *and* a fresh Go build cache (temporary
directories), so it measures a clean machine's compile without wiping the
shared caches; Go module downloads are reused. A cold build takes minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from localcluster import build, config


def _timed_ensure() -> float:
    start = time.monotonic()
    build.ensure_binaries(progress=True)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also measure a cold build")
    args = parser.parse_args()

    first = _timed_ensure()
    warm = _timed_ensure()
    print(f"ensure_binaries (first call this run): {first:.2f}s")
    print(f"ensure_binaries warm (cache hit):     {warm:.3f}s")
    for info in sorted(config.cache_dir().glob("*/BUILD_INFO")):
        lines = info.read_text().splitlines()
        print(f"  cache entry {info.parent.name}: {lines[-1]}")

    if args.cold:
        with tempfile.TemporaryDirectory(prefix="lc-cold-") as tmp:
            os.environ["LOCALCLUSTER_CACHE_DIR"] = str(Path(tmp) / "bin")
            os.environ["GOCACHE"] = str(Path(tmp) / "gocache")
            build._go_env.cache_clear()
            cold = _timed_ensure()
            for info in sorted((Path(tmp) / "bin").glob("*/BUILD_INFO")):
                print(f"  cold {info.parent.name}: {info.read_text().splitlines()[-1]}")
            print(f"ensure_binaries cold (empty caches):  {cold:.1f}s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
