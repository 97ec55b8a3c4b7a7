"""Where one snapshot lives: an S3 object or a file on a mounted volume (pure values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

SSEAlgorithm = Literal["AES256", "aws:kms"]

MANIFEST_SUFFIX = ".json"


@dataclass(frozen=True)
class S3Credentials:
    """An access key pair (from the Secret keys `accessKeyID` and `secretAccessKey`)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption asked of the store for every object written."""

    algorithm: SSEAlgorithm
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if self.kms_key_id is not None and self.algorithm != "aws:kms":
            raise ValueError("a KMS key id goes only with aws:kms")


@dataclass(frozen=True)
class S3Location:
    """One object in an S3-compatible store. `credentials` None: boto3's own chain."""

    bucket: str
    key: str
    endpoint_url: str | None = None
    region: str | None = None
    force_path_style: bool = False
    credentials: S3Credentials | None = None
    encryption: Encryption | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def manifest(self) -> S3Location:
        """The manifest object beside the snapshot: `<key>.json`."""
        return S3Location(
            self.bucket,
            self.key + MANIFEST_SUFFIX,
            self.endpoint_url,
            self.region,
            self.force_path_style,
            self.credentials,
            self.encryption,
        )


@dataclass(frozen=True)
class FileLocation:
    """A file on a filesystem the process sees (a claim mounted into the pod)."""

    path: PurePosixPath

    @property
    def uri(self) -> str:
        return f"file://{self.path}"

    def manifest(self) -> FileLocation:
        return FileLocation(self.path.with_name(self.path.name + MANIFEST_SUFFIX))


Location = S3Location | FileLocation


def join_key(prefix: str, name: str) -> str:
    """`prefix` + `name`, with exactly one `/` between them when the prefix has a value."""
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name
