import subprocess
import sys

import pytest

from etcd_operator import __version__
from etcd_operator.cli import build_parser, main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_a_command_is_required() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([])
    assert exc.value.code == 2


def test_run_accepts_repeated_namespaces() -> None:
    args = build_parser().parse_args(["run", "-n", "a", "-n", "b", "--standalone"])
    assert args.namespace == ["a", "b"]
    assert args.standalone


def test_console_script_help_works() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "etcd_operator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "run" in out and "version" in out


def test_run_takes_the_cluster_domain_and_refuses_a_malformed_one() -> None:
    args = build_parser().parse_args(["run", "--cluster-domain", "corp.example"])
    assert args.cluster_domain == "corp.example"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--cluster-domain", "Corp..example."])
