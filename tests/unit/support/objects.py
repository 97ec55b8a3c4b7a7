"""A stand-in for lightkube's AsyncClient serving objects by (kind, name) and lists by kind,
recording every call as (group, resource, verb) and what was written; and the pods a Job
leaves behind, for the shells that read results from termination messages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.models.core_v1 import (
    ContainerState,
    ContainerStateTerminated,
    ContainerStatus,
    PodStatus,
)
from lightkube.models.meta_v1 import ObjectMeta, Status
from lightkube.resources.core_v1 import Pod

from etcd_operator import rbac
from etcd_operator.backup.contract import Result


class Raw:
    """What `kube.get` returns for a custom resource: only `to_dict()` is read."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def to_dict(self) -> dict[str, Any]:
        return self.body


class ObjectsKube:
    """Gets of objects not in `objects` are 404s; lists of kinds not in `listed` are empty."""

    def __init__(
        self,
        objects: Mapping[tuple[Any, str], Any] | None = None,
        listed: Mapping[Any, Sequence[Any]] | None = None,
    ) -> None:
        self.objects = dict(objects or {})
        self.listed = {kind: list(items) for kind, items in (listed or {}).items()}
        self.calls: set[tuple[str, str, str]] = set()
        self.created: list[Any] = []
        self.deleted: list[tuple[Any, str]] = []
        self.status_patches: list[dict[str, Any]] = []

    def _record(self, kind: Any, verb: str) -> None:
        self.calls.add((*rbac.resource_of(kind), verb))

    async def get(self, kind: Any, name: str, **_: Any) -> Any:
        self._record(kind, "get")
        if (kind, name) not in self.objects:
            raise ApiError(status=Status(code=404, message="not found", reason="NotFound"))
        return self.objects[(kind, name)]

    def list(self, kind: Any, **_: Any) -> AsyncIterator[Any]:
        self._record(kind, "list")
        items = list(self.listed.get(kind, []))

        async def gen() -> AsyncIterator[Any]:
            for item in items:
                yield item

        return gen()

    async def create(self, obj: Any, **_: Any) -> None:
        self._record(type(obj), "create")
        self.created.append(obj)

    async def delete(self, kind: Any, name: str, **_: Any) -> None:
        self._record(kind, "delete")
        self.deleted.append((kind, name))

    async def patch(self, kind: Any, name: str, obj: Any, **_: Any) -> None:
        self._record(kind, "patch")
        self.status_patches.append(obj["status"])


def declared() -> set[tuple[str, str, str]]:
    """Every (group, resource, verb) the operator's modules declare for RBAC."""
    return {(r.group, r.resource, r.verb) for r in rbac.declared()}


def result_pod(name: str, result: Result, phase: str | None = None) -> Pod:
    """A Job pod whose `backup` container ended with `result` as its termination message."""
    terminated = ContainerStateTerminated(exitCode=0, message=result.to_json())
    return Pod(
        metadata=ObjectMeta(name=name),
        status=PodStatus(
            phase=phase,
            containerStatuses=[
                ContainerStatus(
                    name="backup", image="op", imageID="", ready=False, restartCount=0,
                    state=ContainerState(terminated=terminated),
                )
            ],
        ),
    )  # fmt: skip
