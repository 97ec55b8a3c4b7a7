"""Secrets read by name, at most once per round (no list or watch: the operator reads only
the Secrets a cluster's spec names or that it issues itself)."""

from __future__ import annotations

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from etcd_operator import rbac

rbac.needs(Secret, "get", why="TLS: the cluster's certificates, read by name")

_NOT_FOUND = 404


class SecretReader:
    """The Secrets of one namespace one round has read (or written), by name."""

    def __init__(self, kube: AsyncClient, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self._seen: dict[str, Secret | None] = {}

    async def get(self, name: str) -> Secret | None:
        """The Secret, or None when it does not exist."""
        if name not in self._seen:
            try:
                self._seen[name] = await self.kube.get(Secret, name, namespace=self.namespace)
            except ApiError as e:
                if e.status.code != _NOT_FOUND:
                    raise
                self._seen[name] = None
        return self._seen[name]

    def wrote(self, secret: Secret) -> None:
        """What this round just wrote is what later reads in the round see."""
        assert secret.metadata is not None and secret.metadata.name is not None
        self._seen[secret.metadata.name] = secret
