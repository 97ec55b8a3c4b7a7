"""What passes between the operator and its backup Job: environment, mounts and the result.

The Job's pod has no Kubernetes API access. The operator tells it what to do in
environment variables (nothing secret) and mounts the Secrets it needs as files; the pod
reports back in its termination message, one JSON object the operator reads from the pod
status. Both sides import this module, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

ENV_CLUSTER = "ETCD_BACKUP_CLUSTER"
ENV_ENDPOINTS = "ETCD_BACKUP_ENDPOINTS"  # member client URLs, comma-separated
ENV_DESTINATION = "ETCD_BACKUP_DESTINATION"  # JSON: {"s3": {...}} or {"file": {"path": ...}}
ENV_RESULT_PATH = "ETCD_BACKUP_RESULT_PATH"

TLS_DIR = "/etc/etcd-backup/tls"  # the operator's client certificate Secret (cert-manager keys)
ROOT_DIR = "/etc/etcd-backup/root"  # the cluster's root Secret (key `password`)
S3_DIR = "/etc/etcd-backup/s3"  # the S3 credentials Secret
VOLUME_DIR = "/backup"  # the destination claim
RESULT_PATH = "/dev/termination-log"
S3_ACCESS_KEY = "accessKeyID"
S3_SECRET_KEY = "secretAccessKey"
# The Secrets' key files (tls/material.py: cert-manager's layout) and etcd's root user
# (resources/root_secret.py), pinned to those by a unit test: named here so the Job does
# not import the certificate code and resource builders (cryptography, lightkube, the API
# models) only for a few strings; its start is part of every backup's time.
TLS_CA_FILE = "ca.crt"
TLS_CERT_FILE = "tls.crt"
TLS_KEY_FILE = "tls.key"
ROOT_PASSWORD_FILE = "password"
ROOT_USER = "root"
# A termination message holds at most 4096 bytes; messages are cut to stay well inside.
MAX_MESSAGE = 1500

Outcome = Literal["Succeeded", "Failed"]

# Failures a retry cannot fix: the attempt exits with PERMANENT_EXIT_CODE and the Job's
# podFailurePolicy fails the Job at once instead of spending its backoffLimit.
PERMANENT_EXIT_CODE = 3
PERMANENT_REASONS = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "InvalidConfiguration",
        "NoCredentials",
        "NoSuchBucket",
        "PermissionDenied",
        "ReadOnlyFilesystem",
        "SignatureDoesNotMatch",
    }
)


@dataclass(frozen=True)
class Mounts:
    """Where the pod finds its Secrets (a directory that does not exist: not mounted)."""

    tls: str = TLS_DIR
    root: str = ROOT_DIR
    s3: str = S3_DIR


@dataclass(frozen=True)
class Result:
    """What one attempt did. On success every field but reason/message is set."""

    outcome: Outcome
    reason: str = ""
    message: str = ""
    location: str | None = None
    size: int | None = None
    sha256: str | None = None
    revision: int | None = None
    cluster_id: str | None = None
    etcd_version: str | None = None
    member: str | None = None
    keys: int | None = None  # keys at `revision`; None when it could not be counted
    start_time: str | None = None
    completion_time: str | None = None

    @property
    def exit_code(self) -> int:
        if self.outcome == "Succeeded":
            return 0
        return PERMANENT_EXIT_CODE if self.reason in PERMANENT_REASONS else 1

    def to_json(self) -> str:
        body = {k: v for k, v in asdict(self).items() if v not in (None, "")}
        body["message"] = self.message[:MAX_MESSAGE]
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Result | None:
        """The result in a termination message; None if it holds none (e.g. killed)."""
        try:
            body: Any = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            return None
        if not isinstance(body, dict) or body.get("outcome") not in ("Succeeded", "Failed"):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in body.items() if k in known})
        except TypeError:
            return None
