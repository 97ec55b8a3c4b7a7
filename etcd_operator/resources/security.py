"""The container security context that passes the `restricted` Pod Security Standard."""

from __future__ import annotations

from lightkube.models.core_v1 import Capabilities, SeccompProfile, SecurityContext


def restricted_container_security() -> SecurityContext:
    """No privilege escalation, no capabilities, read-only root, non-root, default seccomp."""
    return SecurityContext(
        allowPrivilegeEscalation=False,
        capabilities=Capabilities(drop=["ALL"]),
        readOnlyRootFilesystem=True,
        runAsNonRoot=True,
        seccompProfile=SeccompProfile(type="RuntimeDefault"),
    )
