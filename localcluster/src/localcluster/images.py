"""Container images as local programs.

A node has no image store: an image reference is mapped to programs on this machine.
etcd images map to the etcd binaries of exactly the tagged version, the operator's image
to the project's Python entry point, and a few utility images to the host's shell.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Resolves an etcd version ("3.6.7") to the directory holding etcd, etcdctl, etcdutl.
EtcdLookup = Callable[[str], Path | None]

_ETCD_TAG = re.compile(r"^v?(\d+\.\d+\.\d+)(?:-\d+)?$")
UTILITY_IMAGES = {"busybox", "alpine", "debian", "ubuntu"}
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageNotFound(Exception):
    """The image has no local equivalent (a kubelet would fail to pull it)."""


@dataclass(frozen=True)
class LocalImage:
    """What running a container of this image means on this machine."""

    image_id: str
    entrypoint: tuple[str, ...]
    default_cmd: tuple[str, ...] = ()
    bin_dirs: tuple[Path, ...] = ()
    # Image paths (e.g. /usr/local/bin/etcd) that map to local programs.
    aliases: Mapping[str, str] = field(default_factory=dict)
    # The host files the image consists of (its "filesystem"): a non-root container must
    # reach them even where the host hides them (the node shows them; container.py).
    files: tuple[str, ...] = ()

    @property
    def path_env(self) -> str:
        return os.pathsep.join([*(str(d) for d in self.bin_dirs), HOST_PATH])

    def resolve(self, program: str) -> str:
        """Map a command's program (absolute image path or bare name) to a local path."""
        if program in self.aliases:
            return self.aliases[program]
        name = os.path.basename(program)
        if program.startswith("/usr/local/bin/") and name in self.aliases:
            return self.aliases[name]
        if os.path.isabs(program):
            return program
        return self.aliases.get(program) or shutil.which(program, path=self.path_env) or program


def parse_reference(image: str) -> tuple[str, str]:
    """Split an image reference into (repository, tag); digests are ignored."""
    ref = image.split("@", 1)[0]
    repo, _, tag = ref.rpartition(":")
    if not repo or "/" in tag:
        return ref, "latest"
    return repo, tag


def _default_etcd_lookup(version: str) -> Path | None:
    # build.py is the control plane's side; imported lazily as only the agent needs it.
    build: Any = importlib.import_module("localcluster.build")
    binaries = build.etcd_binaries_for(version)
    return None if binaries is None else Path(binaries.etcd).parent


def resolve_image(image: str, etcd_lookup: EtcdLookup | None = None) -> LocalImage:
    repo, tag = parse_reference(image)
    base = repo.rsplit("/", 1)[-1]
    if base == "etcd":
        match = _ETCD_TAG.match(tag)
        if not match:
            raise ImageNotFound(f"no local etcd for tag {tag!r} of {image}")
        version = match.group(1)
        bin_dir = (etcd_lookup or _default_etcd_lookup)(version)
        if bin_dir is None:
            raise ImageNotFound(f"no local etcd binaries for version {version} ({image})")
        progs = {p: str(bin_dir / p) for p in ("etcd", "etcdctl", "etcdutl")}
        aliases = progs | {f"/usr/local/bin/{p}": v for p, v in progs.items()}
        return LocalImage(
            image_id=f"local://etcd/{version}",
            entrypoint=(progs["etcd"],),
            bin_dirs=(bin_dir,),
            aliases=aliases,
            files=(
                str(bin_dir),
                *sorted({os.path.dirname(os.path.realpath(p)) for p in progs.values()}),
            ),
        )
    if base == "etcd-operator":
        venv_bin = Path(sys.prefix) / "bin"
        operator = str(venv_bin / "etcd-operator")
        aliases = {
            "etcd-operator": operator,
            "/usr/local/bin/etcd-operator": operator,
            "python": sys.executable,
            "python3": sys.executable,
            "/usr/local/bin/python": sys.executable,
            "/usr/local/bin/python3": sys.executable,
        }
        return LocalImage(
            image_id=f"local://etcd-operator/{tag}",
            entrypoint=(operator,),
            bin_dirs=(venv_bin,),
            aliases=aliases,
            files=_python_files(),
        )
    if base in UTILITY_IMAGES:
        return LocalImage(image_id=f"local://{base}/{tag}", entrypoint=(), default_cmd=("/bin/sh",))
    raise ImageNotFound(f"image {image} has no local equivalent")


def _python_files() -> tuple[str, ...]:
    """The interpreter, the virtualenv and every import root of this Python (the operator's
    image runs the project's entry point with it)."""
    roots = {sys.prefix, sys.base_prefix, *(p for p in sys.path if os.path.isabs(p))}
    # Editable installs made by setuptools map packages to their sources in a finder module.
    for name, module in list(sys.modules.items()):
        if name.startswith("__editable__"):
            mapping = getattr(module, "MAPPING", None) or {}
            roots |= {str(p) for p in mapping.values()}
    return tuple(sorted(p for p in roots if os.path.exists(p)))


def container_argv(
    image: LocalImage, command: list[str] | None, args: list[str] | None
) -> list[str]:
    """Kubernetes semantics: command replaces the entrypoint, args replace the image's cmd."""
    if command:
        argv = [*command, *(args or [])]
    else:
        argv = [*image.entrypoint, *(args if args is not None else image.default_cmd)]
    if not argv:
        raise ImageNotFound("neither the image nor the container gives a command")
    return [image.resolve(argv[0]), *argv[1:]]
