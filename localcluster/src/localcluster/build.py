"""Build and cache the localcluster binaries from the pinned Go wrapper modules.

Each wrapper module under ``localcluster/go/`` builds one multi-call binary; the
cache entry for it lives in ``config.cache_dir()/<name>-<key>/`` where the key
hashes everything that decides the output (go.mod, go.sum, main.go, flags, Go
version), so a binary is rebuilt only when a pin changes. The etcd modules hold
only their pins (go.mod, go.sum): their main.go is rendered from one template,
``go/etcd-main.go.tmpl``, with the release's etcdutl commands. Each build runs in
a staged copy of the module, and entries are built in a temporary directory and
renamed into place, so a killed build leaves no half-filled entry.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from localcluster import config, locks

GO_DIR = Path(__file__).resolve().parent / "go"
ETCD_MAIN_TEMPLATE = GO_DIR / "etcd-main.go.tmpl"
_COMMANDS_MARK = "\t\t@ETCDUTL_COMMANDS@\n"

KUBERNETES_VERSION = "1.37.2"


@dataclass(frozen=True)
class EtcdBuild:
    """One etcd release to build; ``module`` is a directory under localcluster/go holding
    its go.mod and go.sum, ``etcdutl`` the etcdutl subcommands of that release."""

    version: str
    module: str
    etcdutl: tuple[str, ...]


_ETCDUTL_3_5 = ("Backup", "Defrag", "Snapshot", "Version", "Check")
_ETCDUTL_3_6 = ("Defrag", "Snapshot", "HashKV", "Version", "Completion", "Migrate")
# The etcd releases available to pods. Adding a release is one line here plus a module
# directory with its pins: copy etcd-3.6/go.mod and go.sum, put the rendered main.go
# next to them (render_etcd_main), `go get` the three etcd modules, `go mod tidy`, and
# delete that main.go again.
ETCD_BUILDS: tuple[EtcdBuild, ...] = (
    EtcdBuild("3.5.35", "etcd-3.5", _ETCDUTL_3_5),
    # A second 3.6 patch, so that patch upgrades (3.6.15 -> 3.6.16) can be tested.
    EtcdBuild("3.6.15", "etcd-3.6.15", _ETCDUTL_3_6),
    EtcdBuild("3.6.16", "etcd-3.6", _ETCDUTL_3_6),
)
# The control plane's own etcd.
CONTROL_PLANE_ETCD_VERSION = "3.6.16"

# The Helm CLI, for rendering and installing the operator's chart (charts/etcd-operator).
HELM_VERSION = "4.3.1"

KUBE_TOOLS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ETCD_TOOLS = ("etcd", "etcdctl", "etcdutl")

# Bump to invalidate every cache entry when the layout or build recipe changes.
_RECIPE = "1"


@dataclass(frozen=True)
class EtcdBinaries:
    version: str
    etcd: Path
    etcdctl: Path
    etcdutl: Path


@dataclass(frozen=True)
class Binaries:
    kubernetes_version: str
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd_versions: dict[str, EtcdBinaries]

    @property
    def control_plane_etcd(self) -> EtcdBinaries:
        return self.etcd_versions[CONTROL_PLANE_ETCD_VERSION]


@dataclass(frozen=True)
class _Target:
    """One wrapper module and the multi-call binary it produces."""

    name: str  # cache entry prefix, e.g. "kube-v1.37.2"
    module: Path  # holds go.mod and go.sum
    main_go: bytes  # the module's main.go
    binary: str  # file name of the real binary in the entry's bin/
    links: tuple[str, ...]  # extra names, symlinked to the binary
    ldflags: tuple[str, ...]


def _kube_target() -> _Target:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    pkg = "k8s.io/component-base/version"
    # component-base/version defaults to v0.0.0-master; kube-apiserver derives its
    # binary (and so emulation/compatibility) version from gitVersion.
    return _Target(
        name=f"kube-v{KUBERNETES_VERSION}",
        module=GO_DIR / "kube",
        main_go=(GO_DIR / "kube" / "main.go").read_bytes(),
        binary="kube",
        links=KUBE_TOOLS,
        ldflags=(
            f"-X {pkg}.gitVersion=v{KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.gitCommit=",
        ),
    )


def _helm_target() -> _Target:
    return _Target(
        name=f"helm-v{HELM_VERSION}",
        module=GO_DIR / "helm",
        main_go=(GO_DIR / "helm" / "main.go").read_bytes(),
        binary="helm",
        links=(),
        ldflags=(),
    )


def ensure_helm(progress: bool = True) -> Path:
    """The pinned helm binary, built once into the cache (not part of ensure_binaries:
    only the chart's tests need it)."""
    return _ensure(_helm_target(), progress) / "helm"


def render_etcd_main(build: EtcdBuild) -> bytes:
    """The main.go of an etcd release's wrapper module, from the one template."""
    template = ETCD_MAIN_TEMPLATE.read_text()
    if template.count(_COMMANDS_MARK) != 1:
        raise RuntimeError(f"{ETCD_MAIN_TEMPLATE} must hold {_COMMANDS_MARK.strip()} once")
    commands = "".join(f"\t\tetcdutl.New{name}Command(),\n" for name in build.etcdutl)
    return template.replace(_COMMANDS_MARK, commands).encode()


def _etcd_target(build: EtcdBuild) -> _Target:
    return _Target(
        name=f"etcd-v{build.version}",
        module=GO_DIR / build.module,
        main_go=render_etcd_main(build),
        binary="etcd",
        links=("etcdctl", "etcdutl"),
        ldflags=(),
    )


@functools.cache
def _go_env() -> tuple[str, str]:
    """(go binary, "GOVERSION GOOS GOARCH") of the Go toolchain used for builds."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise RuntimeError("Go is needed to build localcluster binaries; none found on PATH")
    out = subprocess.run(
        [go, "env", "GOVERSION", "GOOS", "GOARCH"],
        env=_build_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return go, " ".join(out.split())


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    # Static binaries, no toolchain switching, and go.sum as committed is the truth.
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-mod=readonly")
    return env


def _ldflags(target: _Target) -> str:
    return " ".join(("-s", "-w", *target.ldflags))


def _entry_dir(target: _Target) -> Path:
    digest = hashlib.sha256()
    digest.update(f"{_RECIPE}\0{_go_env()[1]}\0{_ldflags(target)}\0".encode())
    for file, content in _sources(target):
        digest.update(file.encode() + b"\0" + content + b"\0")
    return config.cache_dir() / f"{target.name}-{digest.hexdigest()[:16]}"


def _sources(target: _Target) -> list[tuple[str, bytes]]:
    """The files of the module as built: its pins and its main.go."""
    pins = [(f, (target.module / f).read_bytes()) for f in ("go.mod", "go.sum")]
    return [*pins, ("main.go", target.main_go)]


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"[localcluster] {message}", file=sys.stderr, flush=True)


def _build(target: _Target, entry: Path, progress: bool) -> None:
    go, _ = _go_env()
    tmp = entry.with_name(f".tmp-{entry.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    what = ", ".join(dict.fromkeys((target.binary, *target.links)))
    _log(progress, f"building {target.name} ({what}) from {target.module} ...")
    start = time.monotonic()
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(30):
            _log(progress, f"  still building {target.name}: {time.monotonic() - start:.0f}s")

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        output = str(tmp / "bin" / target.binary)
        with tempfile.TemporaryDirectory(prefix=f"lc-{target.name}-") as staged:
            for file, content in _sources(target):
                (Path(staged) / file).write_bytes(content)
            result = subprocess.run(
                [go, "build", "-trimpath", f"-ldflags={_ldflags(target)}", "-o", output, "."],
                check=False,
                cwd=staged,
                env=_build_env(),
                capture_output=True,
                text=True,
            )
    finally:
        done.set()
    if result.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"go build of {target.name} failed:\n{result.stderr[-4000:]}")
    for link in target.links:
        if link != target.binary:
            (tmp / "bin" / link).symlink_to(target.binary)
    (tmp / "BUILD_INFO").write_text(
        f"{target.name}\n{_go_env()[1]}\nbuilt in {time.monotonic() - start:.1f}s\n"
    )
    os.rename(tmp, entry)
    _log(progress, f"built {target.name} in {time.monotonic() - start:.0f}s")


def _ensure(target: _Target, progress: bool) -> Path:
    entry = _entry_dir(target)
    if not (entry / "bin" / target.binary).exists():
        # Serialise builds of one entry across processes (e.g. parallel test runs).
        with locks.exclusive(config.cache_dir() / f".lock-{target.name}"):
            if not (entry / "bin" / target.binary).exists():
                # Leftovers of killed builds (the lock says none is running).
                for stale in entry.parent.glob(f".tmp-{entry.name}-*"):
                    shutil.rmtree(stale, ignore_errors=True)
                _build(target, entry, progress)
    return entry / "bin"


def _etcd_binaries(version: str, bindir: Path) -> EtcdBinaries:
    return EtcdBinaries(
        version=version,
        etcd=bindir / "etcd",
        etcdctl=bindir / "etcdctl",
        etcdutl=bindir / "etcdutl",
    )


def ensure_binaries(progress: bool = True) -> Binaries:
    """Build whatever is missing from the cache and return the binary paths."""
    start = time.monotonic()
    kube = _ensure(_kube_target(), progress)
    etcd = {
        b.version: _etcd_binaries(b.version, _ensure(_etcd_target(b), progress))
        for b in ETCD_BUILDS
    }
    _log(progress, f"binaries ready in {config.cache_dir()} ({time.monotonic() - start:.1f}s)")
    return Binaries(
        kubernetes_version=KUBERNETES_VERSION,
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kubectl=kube / "kubectl",
        etcd_versions=etcd,
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _match(version: str, known: Sequence[str]) -> str | None:
    """Exact "3.6.16", or the newest patch for a minor-only "3.6"."""
    wanted = version.strip().removeprefix("v")
    if wanted in known:
        return wanted
    candidates = [v for v in known if v.startswith(wanted + ".") and wanted.count(".") == 1]
    return max(candidates, key=_version_key) if candidates else None


def etcd_binaries_for(version: str) -> EtcdBinaries | None:
    """Binaries for an etcd version or image tag ("v3.6.16", "3.6"), if built.

    Looks in the cache only (never builds): None if the version is not pinned in
    ETCD_BUILDS or has not been built yet (`python -m localcluster build`).
    """
    found = _match(version, [b.version for b in ETCD_BUILDS])
    if found is None:
        return None
    build = next(b for b in ETCD_BUILDS if b.version == found)
    bindir = _entry_dir(_etcd_target(build)) / "bin"
    if not (bindir / "etcd").exists():
        return None
    return _etcd_binaries(found, bindir)
