"""A container's mountPath must not hide the host paths it runs from."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster.node.volumes import VolumeError, check_not_hidden


def _mounts(state: Path) -> list[tuple[Path, str, bool]]:
    pod = state / "nodes" / "lc-node-0" / "pods" / "uid" / "volumes"
    return [(pod / "tmp", "/tmp", False), (pod / "token", "/var/run/secrets/token", True)]


def test_an_empty_dir_at_tmp_over_a_checkout_in_tmp_is_refused_with_the_way_out() -> None:
    state = Path("/tmp/clone/.localcluster")
    with pytest.raises(VolumeError, match=r"mountPath /tmp would hide /tmp/clone/.*outside /tmp"):
        check_not_hidden(_mounts(state), (Path("/tmp/clone/.venv/bin"),))


def test_the_image_alone_hidden_is_refused_too() -> None:
    mounts = _mounts(Path("/work/clone/.localcluster"))
    with pytest.raises(VolumeError, match=r"would hide /tmp/venv/bin"):
        check_not_hidden(mounts, (Path("/tmp/venv/bin"),))


def test_a_checkout_outside_every_mount_path_is_fine() -> None:
    state = Path("/work/clone/.localcluster")
    check_not_hidden(_mounts(state), (Path("/work/clone/.venv/bin"), state / "nodes"))
