"""A stand-in for lightkube's AsyncClient: serves one EtcdCluster body and lists of objects,
and records every call as (group, resource, verb) plus what was written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta, Status
from lightkube.resources.core_v1 import PersistentVolumeClaim, Secret

from etcd_operator import rbac

WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})


class RecordingClient:
    def __init__(
        self,
        body: dict[str, Any],
        pvcs: Sequence[str] = (),
        *,
        listed: Mapping[type[Any], Sequence[Any]] | None = None,
        fail_apply: Callable[[Any], Exception | None] | None = None,
        secrets: Mapping[str, Secret] | None = None,
    ) -> None:
        self.body, self.pvcs = body, list(pvcs)
        # Secrets by name: gets of others are 404; creates and patches land here.
        self.secrets = dict(secrets or {})
        self.listed = dict(listed or {})
        self.fail_apply = fail_apply
        self.calls = set[tuple[str, str, str]]()
        self.written: list[tuple[str, Any]] = []  # (verb, object or patch), in order

    def _record(self, kind: Any, verb: str) -> None:
        self.calls.add((*rbac.resource_of(kind), verb))

    @property
    def writes(self) -> set[tuple[str, str, str]]:
        return {c for c in self.calls if c[2] in WRITE_VERBS}

    async def get(self, kind: Any, name: str, **_: Any) -> Any:
        self._record(kind, "get")
        if kind is Secret:
            if name not in self.secrets:
                raise ApiError(status=Status(code=404, message="not found", reason="NotFound"))
            return self.secrets[name]
        body = self.body

        class Raw:
            def to_dict(self) -> dict[str, Any]:
                return body

        return Raw()

    def list(self, kind: Any, **_: Any) -> AsyncIterator[Any]:
        self._record(kind, "list")
        if kind in self.listed:
            objects = list(self.listed[kind])
        elif kind is PersistentVolumeClaim:
            objects = [kind(metadata=ObjectMeta(name=name)) for name in self.pvcs]
        else:
            objects = []

        async def items() -> AsyncIterator[Any]:
            for obj in objects:
                yield obj

        return items()

    async def create(self, obj: Any, **_: Any) -> None:
        self._record(type(obj), "create")  # a subresource (pods/eviction) knows its own name
        self.written.append(("create", obj))
        if isinstance(obj, Secret) and obj.metadata and obj.metadata.name:
            self.secrets[obj.metadata.name] = obj

    async def delete(self, kind: Any, name: str, **_: Any) -> None:
        self._record(kind, "delete")
        self.written.append(("delete", (kind, name)))

    async def patch(self, kind: Any, name: str, obj: Any, **_: Any) -> Any:
        self._record(kind, "patch")
        self.written.append(("patch", obj))
        if kind is Secret:
            # A merge patch: keys not named stay (data and annotations alike).
            old = self.secrets[name]
            meta = old.metadata or ObjectMeta(name=name)
            added = (obj.get("metadata") or {}).get("annotations") or {}
            if added:
                annotations = {**(meta.annotations or {}), **added}
                meta = ObjectMeta.from_dict({**meta.to_dict(), "annotations": annotations})
            data = {**(old.data or {}), **obj["data"]}
            self.secrets[name] = Secret(metadata=meta, type=old.type, data=data)
            return self.secrets[name]
        return None

    async def apply(self, obj: Any, **_: Any) -> None:
        # Server-side apply is a PATCH that creates the object when it is missing.
        self._record(type(obj), "patch")
        self._record(type(obj), "create")
        error = self.fail_apply(obj) if self.fail_apply else None
        if error is not None:
            raise error
        self.written.append(("apply", obj))
