from pathlib import Path

from etcd_operator.memberinit import MARKER_NAME, Identity, Verdict, check_data_dir
from unit.support.wal_files import write_wal

ME = Identity(cluster_uid="uid-1", member_name="demo-0")
MY_ID = 0xABC


def _with_wal(root: Path, member_id: int = MY_ID) -> Path:
    data = root / "data"
    write_wal(data, member_id)
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


def test_a_member_dir_without_a_wal_is_not_data(tmp_path: Path) -> None:
    # etcd renames a complete WAL into place; an empty member/ (or member/wal) holds no log.
    (tmp_path / "data" / "member" / "wal").mkdir(parents=True)
    assert check_data_dir(tmp_path / "data", ME, expect_data=True)[0] is Verdict.DATA_LOST
    assert check_data_dir(tmp_path / "data", ME, False, member_id=MY_ID)[0] is Verdict.DATA_LOST


def test_recorded_member_with_empty_volume_is_data_lost(tmp_path: Path) -> None:
    verdict, _ = check_data_dir(tmp_path / "data", ME, expect_data=False, member_id=MY_ID)
    assert verdict is Verdict.DATA_LOST


def test_started_member_with_its_own_data_may_start(tmp_path: Path) -> None:
    data = _with_wal(tmp_path)
    assert check_data_dir(data, ME, expect_data=False)[0] is Verdict.OK
    assert check_data_dir(data, ME, expect_data=True)[0] is Verdict.OK
    assert check_data_dir(data, ME, expect_data=True, member_id=MY_ID)[0] is Verdict.OK


def test_the_log_of_another_member_id_is_refused(tmp_path: Path) -> None:
    # Same name, same cluster, but the volume holds a removed incarnation's log.
    data = _with_wal(tmp_path, member_id=0xDEAD)
    verdict, message = check_data_dir(data, ME, expect_data=True, member_id=MY_ID)
    assert verdict is Verdict.FOREIGN_DATA
    assert "dead" in message
    assert "abc" in message


def test_an_unreadable_wal_is_never_started(tmp_path: Path) -> None:
    wal = tmp_path / "data" / "member" / "wal"
    wal.mkdir(parents=True)
    (wal / "0000000000000000-0000000000000000.wal").write_bytes(b"\xff" * 64)
    assert check_data_dir(tmp_path / "data", ME, expect_data=True)[0] is Verdict.DATA_LOST
    assert check_data_dir(tmp_path / "data", ME, expect_data=False)[0] is Verdict.FOREIGN_DATA


def test_data_of_another_cluster_is_refused(tmp_path: Path) -> None:
    data = _with_wal(tmp_path)
    check_data_dir(data, Identity("uid-other", "demo-0"), expect_data=False)
    verdict, message = check_data_dir(data, ME, expect_data=True)
    assert verdict is Verdict.FOREIGN_DATA
    assert "uid-other" in message


def test_data_of_another_member_of_the_same_cluster_is_refused(tmp_path: Path) -> None:
    data = _with_wal(tmp_path)
    check_data_dir(data, Identity("uid-1", "demo-2"), expect_data=False)
    assert check_data_dir(data, ME, expect_data=False)[0] is Verdict.FOREIGN_DATA


def test_unreadable_marker_does_not_block_a_member_with_its_own_log(tmp_path: Path) -> None:
    data = _with_wal(tmp_path)
    (tmp_path / MARKER_NAME).write_text("{not json")
    assert check_data_dir(data, ME, expect_data=True, member_id=MY_ID)[0] is Verdict.OK


def test_cli_exit_code_tells_the_operator_what_happened(tmp_path: Path) -> None:
    from etcd_operator.cli import main

    base = ["member-init", f"--data-dir={tmp_path / 'data'}", "--cluster-uid=u", "--member=m"]
    assert main([*base, "--expect-data"]) == Verdict.DATA_LOST
    assert main([*base, "--member-id=abc"]) == Verdict.DATA_LOST
    assert main(base) == Verdict.OK
    write_wal(tmp_path / "data", 0xABC)
    assert main([*base, "--member-id=abc"]) == Verdict.OK
    assert main([*base, "--member-id=abd"]) == Verdict.FOREIGN_DATA
