"""Pod volumes as host directories, later bind-mounted at each container's mountPath."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localcluster.node import security
from localcluster.node.envs import ConfigError, PodContext, field_value
from localcluster.node.kube import Kube
from localcluster.paths import NodePaths

Obj = dict[str, Any]
# Volume types rendered from API objects; re-rendered periodically so updates reach pods.
RENDERED = ("secret", "configMap", "downwardAPI", "projected")
# A kubelet makes an emptyDir world-writable (the pod's users are not known to the node).
EMPTY_DIR_MODE = 0o777


class VolumeError(Exception):
    """A volume cannot be provided (unsupported type, missing object)."""


class VolumeNotReady(Exception):
    """A volume is not available yet (e.g. its PVC is not bound); retry later."""


async def prepare(
    ctx: PodContext, kube: Kube, paths: NodePaths, rendered_only: bool = False
) -> dict[str, Path]:
    """Host directory of every volume of the pod, creating or refreshing contents.

    With an fsGroup, volumes a kubelet manages the ownership of (emptyDir, claims,
    rendered volumes; not hostPath) belong to that group (see ``set_ownership``)."""
    uid = ctx.pod["metadata"]["uid"]
    group, on_mismatch = security.fs_group(ctx.pod)
    out: dict[str, Path] = {}
    for volume in ctx.pod["spec"].get("volumes") or []:
        name = volume["name"]
        own_dir = paths.volume_dir(uid, name)
        if volume.get("persistentVolumeClaim"):
            out[name] = await _pvc_dir(ctx, kube, volume["persistentVolumeClaim"]["claimName"])
            # Claims stand for real disks here (hostPath PVs of the provisioner), whose
            # drivers support fsGroup; a kubelet leaves hostPath PVs alone.
            if group is not None and not rendered_only:
                await asyncio.to_thread(set_ownership, out[name], group, False, on_mismatch)
        elif volume.get("hostPath"):
            out[name] = Path(volume["hostPath"]["path"])
            kind = volume["hostPath"].get("type") or ""
            if kind in ("", "DirectoryOrCreate") and not rendered_only:
                out[name].mkdir(parents=True, exist_ok=True)
        elif "emptyDir" in volume:
            if not own_dir.is_dir():
                own_dir.mkdir(parents=True)
                os.chmod(own_dir, EMPTY_DIR_MODE)
            if group is not None and not rendered_only:
                await asyncio.to_thread(set_ownership, own_dir, group, False, on_mismatch)
            out[name] = own_dir
        elif any(volume.get(k) is not None for k in RENDERED):
            files = await _render(ctx, kube, volume)
            _sync_files(own_dir, files)
            if group is not None:  # like a kubelet, on every refresh and regardless of policy
                set_ownership(own_dir, group, True, False)
            out[name] = own_dir
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeError(f"volume {name!r}: unsupported volume type {', '.join(kinds)}")
    return out


async def _pvc_dir(ctx: PodContext, kube: Kube, claim: str) -> Path:
    pvc = await kube.get("PersistentVolumeClaim", ctx.namespace, claim)
    if pvc is None:
        raise VolumeNotReady(f"persistentvolumeclaim {claim!r} not found")
    pv_name = (pvc.get("spec") or {}).get("volumeName")
    if not pv_name or (pvc.get("status") or {}).get("phase") != "Bound":
        raise VolumeNotReady(f"persistentvolumeclaim {claim!r} is not bound yet")
    pv = await kube.get_pv(pv_name)
    spec = (pv or {}).get("spec") or {}
    source = spec.get("hostPath") or spec.get("local")
    if not source:
        raise VolumeError(f"persistentvolume {pv_name!r} is neither hostPath nor local")
    path = Path(source["path"])
    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
    return path


async def _render(ctx: PodContext, kube: Kube, volume: Obj) -> dict[str, tuple[bytes, int]]:
    """Files of a secret/configMap/downwardAPI/projected volume: path -> (content, mode)."""
    if volume.get("projected") is not None:
        proj = volume["projected"]
        mode = proj.get("defaultMode", 0o644)
        files: dict[str, tuple[bytes, int]] = {}
        for source in proj.get("sources") or []:
            files.update(await _render_source(ctx, kube, source, mode))
        return files
    for key in RENDERED:
        if volume.get(key) is not None:
            body = volume[key]
            return await _render_source(ctx, kube, {key: body}, body.get("defaultMode", 0o644))
    return {}


async def _render_source(
    ctx: PodContext, kube: Kube, source: Obj, mode: int
) -> dict[str, tuple[bytes, int]]:
    if source.get("serviceAccountToken"):
        tok = source["serviceAccountToken"]
        token = await kube.token(
            ctx.pod, tok.get("audience"), int(tok.get("expirationSeconds") or 3600)
        )
        return {tok["path"]: (token.encode(), mode)}
    if source.get("downwardAPI") is not None:
        items = source["downwardAPI"].get("items") or []
        out = {}
        for item in items:
            if not item.get("fieldRef"):
                raise VolumeError(f"downwardAPI item {item['path']!r}: only fieldRef is supported")
            value = field_value(ctx, item["fieldRef"]["fieldPath"]).encode()
            out[item["path"]] = (value, item.get("mode", mode))
        return out
    kind, body = (
        ("Secret", source["secret"]) if source.get("secret") else ("ConfigMap", source["configMap"])
    )
    name = body.get("secretName") or body.get("name") or ""
    data = await kube.data(kind, ctx.namespace, name)
    if data is None:
        if body.get("optional"):
            return {}
        raise VolumeNotReady(f"{kind.lower()} {name!r} not found")
    if not body.get("items"):
        return {k: (v, mode) for k, v in data.items()}
    out = {}
    for item in body["items"]:
        if item["key"] not in data:
            if body.get("optional"):
                continue
            raise ConfigError(f"{kind.lower()} {name!r} has no key {item['key']!r}")
        out[item["path"]] = (data[item["key"]], item.get("mode", mode))
    return out


def _sync_files(root: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Make the directory hold exactly these files; unchanged files are left alone."""
    root.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for rel, (content, mode) in files.items():
        target = root / rel
        wanted.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_bytes() == content:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def set_ownership(root: Path, group: int, read_only: bool, on_root_mismatch: bool) -> None:
    """A kubelet's SetVolumeOwnership: everything below root belongs to the group and gets
    group read (and write unless read-only) permission, directories setgid so that new
    files inherit the group. With OnRootMismatch a root that already conforms is trusted."""
    info = root.stat()
    if on_root_mismatch and not security.needs_ownership_change(
        info.st_gid, info.st_mode, group, read_only
    ):
        return
    entries = [str(root)]
    for top, dirs, files in os.walk(root):
        entries += (os.path.join(top, n) for n in dirs + files)
    for path in entries:
        mode = os.lstat(path).st_mode
        os.lchown(path, -1, group)
        if not stat.S_ISLNK(mode):
            os.chmod(path, security.owned_mode(mode, read_only))


def remove_pod_volumes(paths: NodePaths, uid: str) -> None:
    """emptyDir and rendered volumes die with the pod; PVC and hostPath data stays."""
    shutil.rmtree(paths.pod_dir(uid) / "volumes", ignore_errors=True)


def check_not_hidden(mounts: list[tuple[Path, str, bool]], host_paths: Sequence[Path]) -> None:
    """Containers run from host paths (the image's, the volumes' sources): a mountPath at or
    above one of them (e.g. an emptyDir at /tmp over a checkout in /tmp) hides it from the
    container. Said plainly instead of a failed mount or a missing program."""
    for _, target, _ in mounts:
        shadow = Path(target)
        for path in (*(source for source, t, _ in mounts if t != target), *host_paths):
            if path == shadow or shadow in path.parents:
                raise VolumeError(
                    f"mountPath {target} would hide {path} from the container: localcluster runs"
                    f" containers from host paths, so keep the checkout (and its .localcluster"
                    f" state) outside {target}"
                )


def mounts_for(container: Obj, volumes: dict[str, Path]) -> list[tuple[Path, str, bool]]:
    """(host source, mountPath, read-only) for each volumeMount of the container."""
    out = []
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in volumes:
            raise VolumeError(f"volumeMount {mount['name']!r} refers to no volume of the pod")
        source = volumes[mount["name"]]
        if mount.get("subPath"):
            source = source / mount["subPath"]
            if not source.exists():
                source.mkdir(parents=True)
        out.append((source, mount["mountPath"], bool(mount.get("readOnly"))))
    return out
