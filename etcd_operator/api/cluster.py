"""The `EtcdCluster` object as handlers see it, and parsing it from kopf's dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError

from etcd_operator.api.cluster_spec import EtcdClusterSpec
from etcd_operator.api.cluster_status import EtcdClusterStatus
from etcd_operator.api.common import Resource, ResourceMeta

KIND = "EtcdCluster"
PLURAL = "etcdclusters"
SINGULAR = "etcdcluster"
SHORT_NAMES = ("etcdc", "ec")

# Names of pods, services and secrets derive from the cluster's name, so it must be
# a DNS-1035 label with room for suffixes such as "-client" and "-<ordinal>".
MAX_CLUSTER_NAME_LENGTH = 50
CLUSTER_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(ResourceMeta):
    """An EtcdCluster's metadata: its name is the stem of its pods', services' and secrets'."""

    name: str = Field(max_length=MAX_CLUSTER_NAME_LENGTH, pattern=CLUSTER_NAME_PATTERN)


class EtcdCluster(Resource):
    """An EtcdCluster custom resource, typed."""

    kind: Literal["EtcdCluster"] = "EtcdCluster"
    metadata: ObjectMeta
    spec: EtcdClusterSpec = Field(default_factory=EtcdClusterSpec)
    status: EtcdClusterStatus | None = None


class InvalidSpecError(ValueError):
    """The object does not match the API; `problems` lists each one as `path: message`."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"invalid {what}: " + "; ".join(problems))


def _problems(error: ValidationError, prefix: str) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join([prefix, *(str(part) for part in item["loc"])]).strip(".")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field; this version of etcd-operator does not support it"
        if item["type"] not in ("value_error", "extra_forbidden") and not isinstance(
            item.get("input"), dict | list
        ):
            message += f" (got {item['input']!r})"
        problems.append(f"{path}: {message}")
    return problems


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], data: Mapping[str, Any] | None, what: str) -> _M:
    try:
        return model.model_validate(dict(data or {}), by_alias=True)
    except ValidationError as error:
        raise InvalidSpecError(what, _problems(error, what)) from None


def parse_spec(spec: Mapping[str, Any] | None) -> EtcdClusterSpec:
    """kopf's `spec` -> EtcdClusterSpec, or InvalidSpecError naming each bad field.

    Defaults the API server would have filled in are filled in here too, so the
    result is the same whether or not the object went through a server.
    """
    return _parse(EtcdClusterSpec, spec, "spec")


def parse_status(status: Mapping[str, Any] | None) -> EtcdClusterStatus:
    """kopf's `status` -> EtcdClusterStatus (empty if the operator never wrote one)."""
    return _parse(EtcdClusterStatus, status, "status")


def parse_body(model: type[_M], kind: str, body: Mapping[str, Any]) -> _M:
    """A whole kopf body (apiVersion, kind, metadata, spec, status) -> `model`, or
    InvalidSpecError naming each bad field (one parser for every kind of the group)."""
    try:
        return model.model_validate(
            {
                key: body[key]
                for key in ("apiVersion", "kind", "metadata", "spec", "status")
                if key in body and body[key] is not None
            },
            by_alias=True,
        )
    except ValidationError as error:
        raise InvalidSpecError(kind, _problems(error, "")) from None


def parse_cluster(body: Mapping[str, Any]) -> EtcdCluster:
    """A whole kopf body (apiVersion, kind, metadata, spec, status) -> EtcdCluster."""
    return parse_body(EtcdCluster, KIND, body)
