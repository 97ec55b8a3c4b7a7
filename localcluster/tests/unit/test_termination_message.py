"""A container's termination message, as a kubelet reports it."""

from __future__ import annotations

from pathlib import Path

from localcluster.node.containers import _termination_message, _termination_path


def test_the_message_is_what_the_container_wrote_cut_at_4096_bytes(tmp_path: Path) -> None:
    message, log = tmp_path / "m", tmp_path / "log"
    message.write_text('{"outcome": "Succeeded"}')
    log.write_text("noise\n")
    assert _termination_message({}, 0, message, log) == '{"outcome": "Succeeded"}'
    message.write_text("x" * 5000)
    assert len(_termination_message({}, 1, message, log)) == 4096


def test_fallback_to_logs_only_after_a_failure_with_no_message(tmp_path: Path) -> None:
    message, log = tmp_path / "m", tmp_path / "log"
    message.write_text("")
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    fallback = {"terminationMessagePolicy": "FallbackToLogsOnError"}
    assert _termination_message(fallback, 0, message, log) == ""
    assert _termination_message({}, 1, message, log) == ""
    tail = _termination_message(fallback, 1, message, log)
    assert tail.splitlines()[-1] == "line 99" and len(tail.splitlines()) == 80


def test_the_default_path_is_dev_termination_log() -> None:
    assert _termination_path({}) == "/dev/termination-log"
    assert _termination_path({"terminationMessagePath": "/tmp/r"}) == "/tmp/r"
