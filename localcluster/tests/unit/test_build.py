"""The etcd wrapper modules' main.go comes from one template; the binary cache key follows
the template and the pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster import build


@pytest.fixture(autouse=True)
def no_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "_go_env", lambda: ("go", "go1.26 linux amd64"))


@pytest.mark.parametrize("release", build.ETCD_BUILDS, ids=lambda b: b.version)
def test_rendered_main_lists_the_release_s_etcdutl_commands(release: build.EtcdBuild) -> None:
    main = build.render_etcd_main(release).decode()
    assert "@ETCDUTL_COMMANDS@" not in main
    assert main.startswith("// Command etcd is a multi-call binary")
    listed = [line.strip() for line in main.splitlines() if line.strip().startswith("etcdutl.New")]
    assert listed == [f"etcdutl.New{name}Command()," for name in release.etcdutl]


def test_cache_key_changes_with_the_template_and_the_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = build.ETCD_BUILDS[0]
    before = build._entry_dir(build._etcd_target(release))

    template = tmp_path / "etcd-main.go.tmpl"
    template.write_text(build.ETCD_MAIN_TEMPLATE.read_text() + "// changed\n")
    monkeypatch.setattr(build, "ETCD_MAIN_TEMPLATE", template)
    assert build._entry_dir(build._etcd_target(release)) != before
    monkeypatch.undo()
    monkeypatch.setattr(build, "_go_env", lambda: ("go", "go1.26 linux amd64"))
    assert build._entry_dir(build._etcd_target(release)) == before

    pins = tmp_path / "module"
    pins.mkdir()
    (pins / "go.sum").write_bytes((build.GO_DIR / release.module / "go.sum").read_bytes())
    (pins / "go.mod").write_text((build.GO_DIR / release.module / "go.mod").read_text() + "\n")
    moved = build.EtcdBuild(release.version, str(pins), release.etcdutl)
    assert build._entry_dir(build._etcd_target(moved)) != before
