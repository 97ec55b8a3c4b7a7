"""The checked copy of a snapshot and the commit of a restored data directory (files only)."""

from __future__ import annotations

import hashlib
import io
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.datadir import read_identity
from etcd_operator.restore.integrity import (
    Checked,
    Checker,
    SnapshotInvalid,
    copy_checked,
    fetch_file,
)
from etcd_operator.restore.staging import Commit, commit
from unit.support.wal_files import write_wal


def _snapshot(pages: int = 4) -> bytes:
    db = bytes(range(256)) * 2 * pages  # whole 512-byte pages, like a bbolt file
    return db + hashlib.sha256(db).digest()


def test_a_snapshot_with_its_trailer_and_recorded_sha256_is_copied() -> None:
    data = _snapshot()
    out = io.BytesIO()
    checked = copy_checked(io.BytesIO(data), out, hashlib.sha256(data).hexdigest())
    assert out.getvalue() == data
    assert checked.size == len(data)


@pytest.mark.parametrize(
    ("data", "sha", "reason"),
    [
        (_snapshot()[:-100], None, "SnapshotTruncated"),
        (b"x" + _snapshot()[1:], None, "SnapshotCorrupt"),
        (_snapshot(), "0" * 64, "SHA256Mismatch"),
        (b"", None, "SnapshotEmpty"),
    ],
)
def test_a_damaged_snapshot_is_refused(data: bytes, sha: str | None, reason: str) -> None:
    with pytest.raises(SnapshotInvalid) as refused:
        copy_checked(io.BytesIO(data), io.BytesIO(), sha)
    assert refused.value.reason == reason


def test_fetch_leaves_no_file_behind_a_refusal_and_names_a_missing_one(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(_snapshot()[:-1])
    with pytest.raises(SnapshotInvalid):
        fetch_file(tmp_path / "bad.db", tmp_path / "out.db", None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.db"]
    with pytest.raises(SnapshotInvalid) as missing:
        fetch_file(tmp_path / "nope.db", tmp_path / "out.db", None)
    assert missing.value.reason == "SnapshotNotFound"


def _restored(path: Path, member_id: int) -> None:
    write_wal(path, member_id=member_id, cluster_id=7)
    (path / "member" / "snap").mkdir(parents=True, exist_ok=True)
    (path / "member" / "snap" / "db").write_bytes(b"db")


def test_commit_moves_a_complete_restore_into_an_empty_data_dir(tmp_path: Path) -> None:
    staging, data = tmp_path / "staging", tmp_path / "data"
    _restored(staging, 0x11)
    data.mkdir()
    assert commit(staging, data)[0] is Commit.OK
    assert (data / "member" / "snap" / "db").exists() and not staging.exists()


def test_commit_never_replaces_a_members_data(tmp_path: Path) -> None:
    staging, data = tmp_path / "staging", tmp_path / "data"
    _restored(data, 0x22)
    _restored(staging, 0x11)
    code, message = commit(staging, data)
    assert code is Commit.OK and "not restored again" in message
    assert not staging.exists()
    identity = read_identity(data)
    assert identity is not None and identity.member_id == 0x22


def test_commit_refuses_an_incomplete_restore(tmp_path: Path) -> None:
    staging, data = tmp_path / "staging", tmp_path / "data"
    (staging / "member" / "snap").mkdir(parents=True)
    assert commit(staging, data)[0] is Commit.INCOMPLETE
    assert not data.exists()


@given(
    pages=st.integers(1, 6),
    cuts=st.lists(st.integers(0, 6 * 512 + 32), max_size=8),
    flip=st.none() | st.integers(0, 6 * 512 + 31),
)
def test_the_one_pass_checks_agree_with_hashing_the_file_whatever_the_chunks(
    pages: int, cuts: list[int], flip: int | None
) -> None:
    data = bytearray(_snapshot(pages))
    if flip is not None and flip < len(data):
        data[flip] ^= 0x01
    checker = Checker()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, end in itertools.pairwise(bounds):
        checker.update(bytes(data[start:end]))
    whole = hashlib.sha256(data).hexdigest()
    intact = hashlib.sha256(data[:-32]).digest() == bytes(data[-32:])
    if intact:
        assert checker.finish(whole) == Checked(len(data), whole)
    else:
        with pytest.raises(SnapshotInvalid, match="altered"):
            checker.finish(whole)
