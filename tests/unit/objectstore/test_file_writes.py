"""Writing a snapshot file: every byte in order, however the kernel splits the writes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from etcd_operator.objectstore import files, writeback
from etcd_operator.objectstore.writeback import Writeback


def _written(path: Path, chunks: list[bytes]) -> bytes:
    """What `files._write_all` leaves in a new file at `path`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        files._write_all(fd, chunks)
    finally:
        os.close(fd)
    return path.read_bytes()


def test_every_byte_is_written_when_writev_writes_less_than_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev
    calls: list[int] = []

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return real_writev(fd, [bytes(b"".join(buffers)[:7])])  # at most 7 bytes a call

    monkeypatch.setattr(files.os, "writev", short_writev)
    chunks = [bytes([i]) * (i % 11) for i in range(200)]  # empty ones too
    assert _written(tmp_path / "out", chunks) == b"".join(chunks)
    assert len(calls) > 100


def test_more_chunks_than_one_writev_takes_are_all_written(tmp_path: Path) -> None:
    chunks = [i.to_bytes(4, "big") for i in range(3 * files._IOV_MAX + 5)]
    assert _written(tmp_path / "out", chunks) == b"".join(chunks)


def test_writeback_follows_whole_windows_and_leaves_the_bytes_intact(tmp_path: Path) -> None:
    data = os.urandom(5 * 4096 + 100)
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        wb = Writeback(fd, window=4096)
        for i in range(0, len(data), 1000):
            os.write(fd, data[i : i + 1000])
            wb.wrote(len(data[i : i + 1000]))
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    if writeback._sync_file_range is not None:
        assert wb.started == 5 * 4096  # the partial last window is left to fsync


def test_a_writeback_failure_is_raised_not_swallowed(tmp_path: Path) -> None:
    if writeback._sync_file_range is None:
        pytest.skip("no sync_file_range here")
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    os.close(fd)  # the descriptor is stale: the kernel refuses it
    with pytest.raises(OSError):
        Writeback(fd, window=4096).wrote(4096)


def test_a_file_system_without_writeback_control_falls_back_to_the_final_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int, flags: int) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(writeback, "_call", unsupported)
    wb = Writeback(0, window=4096)
    wb.enabled = True
    wb.wrote(3 * 4096)  # no error: the bytes are written, only not early
    assert not wb.enabled


def test_a_disk_error_during_writeback_fails_the_write(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fd: int, offset: int, length: int, flags: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(writeback, "_call", broken)
    wb = Writeback(0, window=4096)
    wb.enabled = True
    with pytest.raises(OSError, match="Input/output"):
        wb.wrote(4096)
