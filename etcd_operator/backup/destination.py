"""Where a backup goes, from the EtcdBackup to the Job's environment and back (pure).

The operator resolves the object's key (or the file's path in the claim) once, when it
builds the Job, so every attempt writes the same place and status can say where it is.
Credentials never travel here: the Job reads them from the mounted Secret.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from etcd_operator.backup import contract
from etcd_operator.objectstore import (
    Encryption,
    FileLocation,
    Location,
    S3Credentials,
    S3Location,
    join_key,
)

if TYPE_CHECKING:  # the backup Job parses none: it starts without the API models' import
    from etcd_operator.api.backup import EtcdBackup
    from etcd_operator.api.backup_spec import S3Destination


def object_name(backup: EtcdBackup) -> str:
    """`<cluster>/<backup>-<creation time>.db`: stable for the object's life, and a backup
    re-created under the same name does not overwrite the earlier one."""
    created = backup.metadata.creation_timestamp or datetime(1970, 1, 1)
    return f"{backup.spec.cluster_name}/{backup.name}-{created:%Y%m%dT%H%M%SZ}.db"


def s3_location(
    s3: S3Destination, key: str, credentials: S3Credentials | None = None
) -> S3Location:
    sse = s3.server_side_encryption
    return S3Location(
        bucket=s3.bucket,
        key=key,
        endpoint_url=s3.endpoint_url,
        region=s3.region,
        force_path_style=s3.force_path_style,
        credentials=credentials,
        encryption=None if sse is None else Encryption(sse.algorithm, sse.kms_key_id),
    )


def location_of(backup: EtcdBackup) -> Location:
    """Where the backup's snapshot goes (S3 without credentials: they stay in the Secret)."""
    destination = backup.spec.destination
    if destination.s3 is not None:
        s3 = destination.s3
        key = join_key(join_key(s3.prefix, backup.namespace), object_name(backup))
        return s3_location(s3, key)
    assert destination.volume is not None  # admission: exactly one destination
    inner = join_key(destination.volume.path, object_name(backup))
    return FileLocation(PurePosixPath(contract.VOLUME_DIR) / inner)


def to_env(location: Location) -> str:
    """The location as the Job's ENV_DESTINATION (no secret in it)."""
    body: dict[str, Any]
    if isinstance(location, FileLocation):
        body = {"file": {"path": str(location.path)}}
    else:
        s3: dict[str, Any] = {
            "bucket": location.bucket,
            "key": location.key,
            "endpointURL": location.endpoint_url,
            "region": location.region,
            "forcePathStyle": location.force_path_style,
        }
        if location.encryption is not None:
            s3["sse"] = {
                "algorithm": location.encryption.algorithm,
                "kmsKeyID": location.encryption.kms_key_id,
            }
        body = {"s3": s3}
    return json.dumps(body, sort_keys=True)


def from_env(text: str, credentials: S3Credentials | None) -> Location:
    """ENV_DESTINATION back to a location; ValueError if it is not one."""
    try:
        body = json.loads(text)
        if "file" in body:
            return FileLocation(PurePosixPath(body["file"]["path"]))
        s3 = body["s3"]
        sse = s3.get("sse")
        return S3Location(
            bucket=s3["bucket"],
            key=s3["key"],
            endpoint_url=s3.get("endpointURL"),
            region=s3.get("region"),
            force_path_style=bool(s3.get("forcePathStyle")),
            credentials=credentials,
            encryption=None if not sse else Encryption(sse["algorithm"], sse.get("kmsKeyID")),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{contract.ENV_DESTINATION} is not a destination: {e}") from None
