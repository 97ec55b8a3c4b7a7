"""Log lines about one cluster carry its namespace and name as kopf's own per-object lines
do (the `k8s_ref` record attribute): its text formats prefix `[namespace/name]`, its JSON
format (`run --log-format json`) puts them under the `object` key, so lines can be filtered
by cluster in either."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from etcd_operator.api import GROUP, KIND, VERSION


class ClusterLogger(logging.LoggerAdapter[logging.Logger]):
    def __init__(self, logger: logging.Logger, namespace: str, name: str) -> None:
        ref = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "namespace": namespace,
            "name": name,
        }
        super().__init__(logger, {"k8s_ref": ref})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(kwargs.get("extra") or {}), **(self.extra or {})}
        return msg, kwargs


def for_cluster(logger: logging.Logger, namespace: str, name: str) -> ClusterLogger:
    return ClusterLogger(logger, namespace, name)
