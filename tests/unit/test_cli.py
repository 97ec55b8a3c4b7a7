import os
import subprocess
import sys

import pytest

from etcd_operator import __version__
from etcd_operator.cli import build_parser, main
from etcd_operator.scope import NAMESPACES_ENV


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


class _KopfCli:
    """Stands in for kopf's click command: records the arguments `run` passes it."""

    def __init__(self) -> None:
        self.args: list[str] = []

    def main(self, args: list[str], **_: object) -> None:
        self.args = args


@pytest.fixture
def kopf_cli(monkeypatch: pytest.MonkeyPatch) -> _KopfCli:
    import kopf.cli

    fake = _KopfCli()
    monkeypatch.setattr(kopf.cli, "main", fake)
    monkeypatch.setenv(NAMESPACES_ENV, "")  # restored (to unset) after the test
    from etcd_operator import leader, serving

    # `run` writes its flags into the environment: restored after the test too.
    for env in (
        leader.LEADER_ELECT_ENV,
        leader.LEASE_NAME_ENV,
        leader.LEASE_NAMESPACE_ENV,
        leader.LEASE_DURATION_ENV,
        leader.RENEW_DEADLINE_ENV,
        leader.RETRY_PERIOD_ENV,
        serving.HEALTH_PORT_ENV,
        serving.METRICS_PORT_ENV,
        serving.STALL_AFTER_ENV,
    ):
        monkeypatch.setenv(env, "")
    return fake


def test_run_watches_every_namespace_by_default(kopf_cli: _KopfCli) -> None:
    assert main(["run"]) == 0
    assert "--all-namespaces" in kopf_cli.args and "--namespace" not in kopf_cli.args
    assert os.environ[NAMESPACES_ENV] == ""  # the handlers see a cluster-wide install


def test_run_takes_namespaces_from_the_environment(
    kopf_cli: _KopfCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NAMESPACES_ENV, "a, b,a")
    assert main(["run"]) == 0
    assert kopf_cli.args[-4:] == ["--namespace", "a", "--namespace", "b"]
    assert "--all-namespaces" not in kopf_cli.args
    assert os.environ[NAMESPACES_ENV] == "a,b"


def test_namespace_flags_win_over_the_environment(
    kopf_cli: _KopfCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NAMESPACES_ENV, "a")
    assert main(["run", "-n", "c"]) == 0
    assert kopf_cli.args[-2:] == ["--namespace", "c"]
    assert os.environ[NAMESPACES_ENV] == "c"


@pytest.mark.parametrize("pattern", ["team-*", "Upper", "a,b", ""])
def test_run_refuses_namespace_patterns_and_malformed_names(pattern: str) -> None:
    # kopf would read a glob as a pattern, which needs the right to list every Namespace.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--namespace", pattern])


def test_a_malformed_namespace_in_the_environment_is_refused(
    kopf_cli: _KopfCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NAMESPACES_ENV, "a,team-*")
    with pytest.raises(ValueError, match="team-"):
        main(["run"])
    assert kopf_cli.args == []


def test_backup_without_a_destination_reports_why_in_its_result_file(
    tmp_path: "os.PathLike[str]", monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from pathlib import Path

    from etcd_operator.backup import contract

    result = Path(tmp_path) / "termination-log"
    monkeypatch.setenv(contract.ENV_RESULT_PATH, str(result))
    monkeypatch.setenv(contract.ENV_ENDPOINTS, "http://127.0.0.1:1")
    monkeypatch.delenv(contract.ENV_DESTINATION, raising=False)
    assert main(["backup"]) == contract.PERMANENT_EXIT_CODE
    reported = json.loads(result.read_text())
    assert (reported["outcome"], reported["reason"]) == ("Failed", "InvalidConfiguration")


def test_leader_election_flags_reach_the_handlers_and_switch_kopf_peering_off(
    kopf_cli: _KopfCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etcd_operator import leader

    args = ["run", "--leader-elect", "--lease-name", "ops", "--renew-deadline", "9"]
    assert main([*args, "--log-format", "json"]) == 0
    assert leader.enabled() and os.environ[leader.LEASE_NAME_ENV] == "ops"
    assert leader.timing_from_env().renew_deadline == 9
    assert "--standalone" in kopf_cli.args  # our Lease decides, not kopf's peering
    assert kopf_cli.args[kopf_cli.args.index("--log-format") + 1] == "json"


def test_impossible_leader_election_timing_is_refused_before_kopf_starts(
    kopf_cli: _KopfCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run", "--leader-elect", "--renew-deadline", "20"]) == 2
    assert kopf_cli.args == []
