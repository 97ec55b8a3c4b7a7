"""A pod's securityContext as the node applies it: identity, refusals, fsGroup, image view."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from localcluster.node import container, security
from localcluster.node.envs import ConfigError
from localcluster.node.security import Identity
from localcluster.node.volumes import set_ownership

Obj = dict[str, Any]


def pod(sc: Obj | None = None) -> Obj:
    spec: Obj = {"containers": []}
    if sc is not None:
        spec["securityContext"] = sc
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}


def ctr(sc: Obj | None = None) -> Obj:
    return {"name": "main", **({"securityContext": sc} if sc is not None else {})}


def test_no_security_context_runs_as_root_unchanged() -> None:
    who = security.identity(pod(), ctr())
    assert who == Identity() and who.is_default
    assert security.switch_argv(who) == []


def test_container_fields_win_over_the_pod_and_groups_follow_the_pod() -> None:
    p = pod({"runAsUser": 1000, "runAsGroup": 1000, "supplementalGroups": [5, 6], "fsGroup": 7})
    who = security.identity(p, ctr({"runAsUser": 65532}))
    assert who == Identity(uid=65532, gid=1000, groups=(5, 6, 7))
    # The fsGroup is not repeated when it is also a supplemental group.
    assert security.identity(pod({"supplementalGroups": [7], "fsGroup": 7}), ctr()).groups == (7,)


def test_a_user_without_a_group_gets_group_root_like_an_image_without_passwd() -> None:
    assert security.identity(pod({"runAsUser": 42}), ctr()) == Identity(uid=42, gid=0)


@pytest.mark.parametrize(
    ("pod_sc", "ctr_sc", "message"),
    [
        ({"runAsNonRoot": True}, None, "container has runAsNonRoot and image will run as root"),
        ({"runAsNonRoot": True, "runAsUser": 0}, None, "runAsUser breaks non-root policy"),
        ({"runAsUser": 1000}, {"runAsNonRoot": True, "runAsUser": 0}, "breaks non-root policy"),
        (None, {"runAsNonRoot": True}, "image will run as root"),
    ],
)
def test_run_as_non_root_refuses_root(pod_sc: Obj | None, ctr_sc: Obj | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        security.identity(pod(pod_sc), ctr(ctr_sc))
    assert 'pod: "p_ns(u1)", container: main' in str(refused.value)


def test_run_as_non_root_admits_a_non_root_user_and_can_be_switched_off() -> None:
    assert security.identity(pod({"runAsNonRoot": True, "runAsUser": 1}), ctr()).uid == 1
    assert security.identity(pod({"runAsNonRoot": True}), ctr({"runAsNonRoot": False})).uid == 0


def test_restricted_container_gets_no_new_privs_and_an_empty_bounding_set() -> None:
    restricted = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    who = security.identity(pod({"runAsUser": 65532, "runAsGroup": 65532}), ctr(restricted))
    assert who.no_new_privs and who.capabilities == ("cap_net_bind_service",)
    assert security.switch_argv(who, "/usr/bin/setpriv") == [
        "/usr/bin/setpriv", "--reuid=65532", "--regid=65532", "--clear-groups", "--no-new-privs",
        "--bounding-set=-all,+net_bind_service", "--inh-caps=-all", "--",
    ]  # fmt: skip
    # Without drop ALL the capabilities stay; allowPrivilegeEscalation unset allows it.
    loose = security.identity(pod(), ctr({"capabilities": {"drop": ["NET_RAW"]}}))
    assert loose.capabilities is None and not loose.no_new_privs


def test_switch_argv_sets_supplementary_groups() -> None:
    argv = security.switch_argv(Identity(uid=1, gid=2, groups=(3, 4)))
    assert "--groups=3,4" in argv and argv[-1] == "--"


def test_fs_group_and_its_change_policy() -> None:
    assert security.fs_group(pod()) == (None, False)
    sc = {"fsGroup": 65532, "fsGroupChangePolicy": "OnRootMismatch"}
    assert security.fs_group(pod(sc)) == (65532, True)


@pytest.mark.parametrize(
    ("gid", "mode", "read_only", "change"),
    [
        (7, stat.S_IFDIR | stat.S_ISGID | 0o2770, False, False),
        (7, stat.S_IFDIR | stat.S_ISGID | 0o775, False, False),
        (7, stat.S_IFDIR | 0o770, False, True),  # no setgid
        (7, stat.S_IFDIR | stat.S_ISGID | 0o750, False, True),  # not group-writable
        (7, stat.S_IFDIR | stat.S_ISGID | 0o550, True, False),  # read-only needs r-x only
        (0, stat.S_IFDIR | stat.S_ISGID | 0o770, False, True),  # another group
        (7, stat.S_IFREG | 0o660, False, True),  # not a directory
    ],
)
def test_ownership_change_is_needed_like_a_kubelet_decides(
    gid: int, mode: int, read_only: bool, change: bool
) -> None:
    assert security.needs_ownership_change(gid, mode, 7, read_only) is change


def test_owned_modes_add_group_bits_and_setgid_on_directories() -> None:
    assert security.owned_mode(stat.S_IFDIR | 0o700, False) == stat.S_ISGID | 0o770
    assert security.owned_mode(stat.S_IFREG | 0o600, False) == 0o660
    assert security.owned_mode(stat.S_IFREG | 0o644, True) == 0o644
    assert security.owned_mode(stat.S_IFDIR | 0o755, True) == stat.S_ISGID | 0o755


def test_set_ownership_walks_the_volume(tmp_path: Path) -> None:
    group = os.getgid() + 1 if os.geteuid() == 0 else os.getgid()
    (tmp_path / "member" / "wal").mkdir(parents=True, mode=0o700)
    (tmp_path / "member" / "wal" / "0.wal").write_bytes(b"x")
    os.chmod(tmp_path / "member" / "wal" / "0.wal", 0o600)
    set_ownership(tmp_path, group, False, True)
    for path in (tmp_path, tmp_path / "member", tmp_path / "member" / "wal"):
        info = path.stat()
        assert info.st_gid == group and stat.S_IMODE(info.st_mode) & 0o2770 == 0o2770
    wal = (tmp_path / "member" / "wal" / "0.wal").stat()
    assert wal.st_gid == group and stat.S_IMODE(wal.st_mode) == 0o660
    # OnRootMismatch: a conforming root is trusted, what is below it is not looked at.
    os.chmod(tmp_path / "member", 0o700)
    set_ownership(tmp_path, group, False, True)
    assert stat.S_IMODE((tmp_path / "member").stat().st_mode) == 0o700
    set_ownership(tmp_path, group, False, False)
    assert stat.S_IMODE((tmp_path / "member").stat().st_mode) == 0o2770


def test_hidden_roots_groups_image_paths_by_the_directory_hiding_them() -> None:
    closed = {"/root", "/root/.pyenv/private"}
    paths = [
        "/root/.pyenv/versions/3.11.7",
        "/root/.pyenv/versions/3.11.7/lib/python3.11",  # inside the one above: shown with it
        "/root/.cache/etcd/bin",
        "/work/venv",
    ]
    view = security.hidden_roots(paths, lambda p: p not in closed)
    assert view == {"/root": ("/root/.cache/etcd/bin", "/root/.pyenv/versions/3.11.7")}
    assert security.hidden_roots(paths, lambda p: True) == {}


def test_prelude_shows_hidden_image_paths_on_a_tmpfs_moved_over_the_hiding_dir(
    tmp_path: Path,
) -> None:
    shown = tmp_path / "cache" / "bin"
    shown.mkdir(parents=True)
    view = {str(tmp_path): (str(shown),)}
    scratch = tmp_path / "scratch"
    text = container.prelude([], "", None, view, scratch)
    lines = text.splitlines()
    tmpfs = next(
        i for i, line in enumerate(lines) if f"tmpfs -o mode=0755 lc-image {scratch}" in line
    )
    bind = next(i for i, line in enumerate(lines) if f"--bind {shown} {scratch}/cache/bin" in line)
    move = next(i for i, line in enumerate(lines) if f"--move {scratch} {tmp_path}" in line)
    assert tmpfs < bind < move and text.endswith('exec "$@"')


def test_the_program_is_started_through_setpriv_as_the_container_user(tmp_path: Path) -> None:
    launch = container.Launch(
        argv=["/bin/etcd", "--name=x"], env={}, netns="lc-x", mounts=[], workdir=None,
        hostname="", log_file=tmp_path / "log", pid_file=tmp_path / "pid",
        identity=Identity(uid=65532, gid=65532),
    )  # fmt: skip
    argv = container.wrapped_argv(launch)
    at = argv.index("--reuid=65532")
    assert argv[at - 1].endswith("setpriv") and argv[-3:] == ["--", "/bin/etcd", "--name=x"]
