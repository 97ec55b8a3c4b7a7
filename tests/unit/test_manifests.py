"""Generated files are checked in; they must equal what the generators produce."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etcd_operator.cli import main
from etcd_operator.manifests import generated_files

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(generated_files(), key=str), ids=str)
def test_checked_in_file_matches_the_generator(path: Path) -> None:
    checked_in = REPO / path
    assert checked_in.exists(), f"{path} is missing: run `make manifests`"
    assert checked_in.read_text() == generated_files()[path], (
        f"{path} is out of date: run `make manifests`"
    )


def test_manifests_command_writes_and_checks(tmp_path: Path) -> None:
    docs, chart = tmp_path / "api.md", tmp_path / "chart"
    args = ["manifests", "--docs", str(docs), "--chart", str(chart)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert docs.read_text().startswith("<!-- Generated")
    assert (chart / "crds" / "etcd.operator.io_etcdclusters.yaml").exists()
    assert (chart / "templates" / "_rbac-rules.tpl").exists()
    assert main([*args, "--check"]) == 0


def test_every_generated_yaml_file_parses() -> None:
    for path, content in generated_files().items():
        if path.suffix == ".yaml":
            documents = [d for d in yaml.safe_load_all(content) if d]
            assert documents and all("apiVersion" in d and "kind" in d for d in documents)


def test_deploy_holds_only_the_manifest_rendered_from_the_chart() -> None:
    """One source of install truth: anything else under deploy/ would be a second copy that
    no generator keeps up to date."""
    files = sorted(str(p.relative_to(REPO)) for p in (REPO / "deploy").rglob("*") if p.is_file())
    assert files == ["deploy/etcd-operator.yaml"]


def test_the_chart_s_generated_crds_are_every_kind() -> None:
    crds = {p.name for p in (REPO / "charts" / "etcd-operator" / "crds").iterdir()}
    assert crds == {p.name for p in generated_files() if p.parent.name == "crds"}
