"""What can go wrong storing or fetching a snapshot, each with a CamelCase `reason`.

`reason` is for status conditions and Events (e.g. the store's own error code such as
`AccessDenied` or `InvalidAccessKeyId`); `str(error)` is one line for humans. Neither
ever carries a credential.
"""

from __future__ import annotations


class ObjectStoreError(Exception):
    reason = "ObjectStoreError"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class NotFound(ObjectStoreError):
    """The snapshot or its manifest does not exist."""

    reason = "NotFound"


class IntegrityError(ObjectStoreError):
    """What was read does not match the manifest (size or sha256), or no manifest is valid."""

    reason = "IntegrityMismatch"
