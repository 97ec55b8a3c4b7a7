from pathlib import Path

from etcd_operator.memberinit import MARKER_NAME, Identity, Verdict, check_data_dir

ME = Identity(cluster_uid="uid-1", member_name="demo-0")


def _with_member_dir(root: Path) -> Path:
    data = root / "data"
    (data / "member" / "wal").mkdir(parents=True)
    return data


def test_fresh_member_may_start_on_an_empty_volume_and_claims_it(tmp_path: Path) -> None:
    verdict, _ = check_data_dir(tmp_path / "data", ME, expect_data=False)
    assert verdict is Verdict.OK
    assert "uid-1" in (tmp_path / MARKER_NAME).read_text()


def test_started_member_with_empty_volume_is_reported_as_data_lost(tmp_path: Path) -> None:
    verdict, message = check_data_dir(tmp_path / "data", ME, expect_data=True)
    assert verdict is Verdict.DATA_LOST
    assert "demo-0" in message
    assert not (tmp_path / MARKER_NAME).exists()


def test_started_member_with_its_own_data_may_start(tmp_path: Path) -> None:
    data = _with_member_dir(tmp_path)
    assert check_data_dir(data, ME, expect_data=False)[0] is Verdict.OK
    assert check_data_dir(data, ME, expect_data=True)[0] is Verdict.OK


def test_data_of_another_cluster_is_refused(tmp_path: Path) -> None:
    data = _with_member_dir(tmp_path)
    check_data_dir(data, Identity("uid-other", "demo-0"), expect_data=False)
    verdict, message = check_data_dir(data, ME, expect_data=True)
    assert verdict is Verdict.FOREIGN_DATA
    assert "uid-other" in message


def test_data_of_another_member_of_the_same_cluster_is_refused(tmp_path: Path) -> None:
    data = _with_member_dir(tmp_path)
    check_data_dir(data, Identity("uid-1", "demo-2"), expect_data=False)
    assert check_data_dir(data, ME, expect_data=False)[0] is Verdict.FOREIGN_DATA


def test_unreadable_marker_does_not_block_a_member_with_data(tmp_path: Path) -> None:
    data = _with_member_dir(tmp_path)
    (tmp_path / MARKER_NAME).write_text("{not json")
    assert check_data_dir(data, ME, expect_data=True)[0] is Verdict.OK


def test_cli_exit_code_tells_the_operator_what_happened(tmp_path: Path) -> None:
    from etcd_operator.cli import main

    base = ["member-init", f"--data-dir={tmp_path / 'data'}", "--cluster-uid=u", "--member=m"]
    assert main([*base, "--expect-data"]) == Verdict.DATA_LOST
    assert main(base) == Verdict.OK
