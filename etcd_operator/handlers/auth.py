"""Root's credentials from the cluster's root Secret, and the etcd calls of the auth steps.

The password travels only from the Secret to the etcd client (`Credentials`, whose repr hides
it); messages name the Secret, never its content.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Secret

from etcd_operator import rbac
from etcd_operator.api import EtcdCluster
from etcd_operator.etcd import Credentials, EtcdClient, UserExists
from etcd_operator.resources.root_secret import (
    PASSWORD_KEY,
    ROOT_USER,
    new_root_password,
    root_secret,
    root_secret_name,
)

rbac.needs(Secret, "get", why="auth: root's password, from the cluster's root Secret only")
rbac.needs(Secret, "create", why="auth: the generated <cluster>-root Secret")

_NOT_FOUND = 404
_CONFLICT = 409
ROOT_ROLE = "root"


class RootSecretUnavailable(Exception):
    """Root's password cannot be read; the message names the Secret and what is wrong."""


@dataclass(frozen=True)
class RootAccess:
    """What the root Secret gave: credentials, or why not."""

    secret: str
    credentials: Credentials | None = None
    problem: str | None = None
    # The Secret is the generated one and does not exist yet: the operator's to create.
    creatable: bool = False


async def read_root(kube: AsyncClient, cluster: EtcdCluster) -> RootAccess:
    name = root_secret_name(cluster)
    where = f"{cluster.namespace}/{name}"
    try:
        secret = await kube.get(Secret, name, namespace=cluster.namespace)
    except ApiError as e:
        if e.status.code != _NOT_FOUND:
            raise
        generated = cluster.spec.auth.root_secret_name is None
        return RootAccess(name, problem=f"Secret {where} does not exist", creatable=generated)
    data = secret.data or {}
    if PASSWORD_KEY not in data:
        return RootAccess(name, problem=f"Secret {where} has no key {PASSWORD_KEY!r}")
    try:
        password = base64.b64decode(data[PASSWORD_KEY], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return RootAccess(name, problem=f"Secret {where}: {PASSWORD_KEY!r} is not UTF-8 text")
    if not password:
        return RootAccess(name, problem=f"Secret {where}: {PASSWORD_KEY!r} is empty")
    return RootAccess(name, credentials=Credentials(ROOT_USER, password))


async def root_credentials(kube: AsyncClient, cluster: EtcdCluster) -> Credentials:
    """Root's credentials, creating the generated Secret with a random password first when it
    does not exist (a create that lost a race reads the winner's)."""
    access = await read_root(kube, cluster)
    if access.credentials is None and access.creatable:
        try:
            await kube.create(root_secret(cluster, new_root_password()))
        except ApiError as e:
            if e.status.code != _CONFLICT:
                raise
        access = await read_root(kube, cluster)
    if access.credentials is None:
        raise RootSecretUnavailable(access.problem or f"Secret {access.secret} is unusable")
    return access.credentials


async def enable_auth(etcd: EtcdClient, root: Credentials) -> None:
    """User root with the Secret's password and role root, then auth on. Every call is
    idempotent, so a step cut short anywhere is completed by taking it again.

    While auth is off root's password guards nothing, so setting it to the Secret's is safe;
    enabling auth with a password the operator does not know would lock it out."""
    try:
        await etcd.user_add(root.username, root.password)
    except UserExists:
        await etcd.user_change_password(root.username, root.password)
    await etcd.user_grant_role(root.username, ROOT_ROLE)
    await etcd.auth_enable()
