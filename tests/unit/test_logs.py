"""Lines about a cluster carry its namespace/name in kopf's text and JSON formats."""

from __future__ import annotations

import json
import logging

from kopf._core.actions.loggers import LogFormat, make_formatter

from etcd_operator.logs import for_cluster


def _record(caplog_records: list[logging.LogRecord]) -> logging.LogRecord:
    [record] = caplog_records
    return record


def test_cluster_lines_carry_namespace_and_name_in_text_and_json() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test.logs")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    for_cluster(logger, "team-a", "main").info("scaled to %d", 3)
    record = _record(records)
    text = make_formatter(LogFormat.PLAIN, log_prefix=None).format(record)
    assert text == "[team-a/main] scaled to 3"
    line = json.loads(make_formatter(LogFormat.JSON, log_prefix=None).format(record))
    assert line["message"] == "scaled to 3"
    assert line["object"]["namespace"] == "team-a" and line["object"]["name"] == "main"
    assert line["object"]["kind"] == "EtcdCluster"
