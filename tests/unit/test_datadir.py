from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcd_operator.datadir import WalError, WalIdentity, has_wal, read_identity
from unit.support.wal_files import frame, record, segment, write_wal


def test_no_wal_means_no_identity(tmp_path: Path) -> None:
    assert read_identity(tmp_path) is None
    (tmp_path / "member" / "wal").mkdir(parents=True)
    assert read_identity(tmp_path) is None
    assert not has_wal(tmp_path)


def test_identity_is_read_from_the_metadata_record(tmp_path: Path) -> None:
    write_wal(tmp_path, member_id=0x8E9E05C52164694D, cluster_id=0xCDF818194E3A8C32)
    assert has_wal(tmp_path)
    assert read_identity(tmp_path) == WalIdentity(0x8E9E05C52164694D, 0xCDF818194E3A8C32)


def test_the_newest_segment_is_read(tmp_path: Path) -> None:
    write_wal(tmp_path, member_id=1, name="0000000000000000-0000000000000000.wal")
    write_wal(tmp_path, member_id=2, name="0000000000000001-00000000000003e8.wal")
    identity = read_identity(tmp_path)
    assert identity is not None
    assert identity.member_id == 2


@given(member=st.integers(1, 2**64 - 1), cluster=st.integers(0, 2**64 - 1))
def test_any_ids_round_trip(member: int, cluster: int) -> None:
    from etcd_operator.datadir import _identity_from

    assert _identity_from(segment(member, cluster), Path("x")) == WalIdentity(member, cluster)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\0" * 64, id="preallocated-zeroes"),
        pytest.param(b"garbage!" * 8, id="garbage"),
        pytest.param(frame(record(2, b"entry")), id="no-metadata-first"),
        pytest.param(frame(record(4)) + frame(record(1, b"")), id="metadata-without-member"),
        pytest.param(segment(7, 9)[:20], id="torn"),
    ],
)
def test_a_segment_that_is_not_a_wal_is_an_error(tmp_path: Path, content: bytes) -> None:
    wal = tmp_path / "member" / "wal"
    wal.mkdir(parents=True)
    (wal / "0000000000000000-0000000000000000.wal").write_bytes(content)
    with pytest.raises(WalError):
        read_identity(tmp_path)
