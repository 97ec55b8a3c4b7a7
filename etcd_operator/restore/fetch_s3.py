"""Fetching a snapshot from an S3-compatible store into a checked local copy, through the
object store's streaming reader (memory stays flat; the object is never held whole)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from etcd_operator.objectstore import NotFound, ObjectStoreError, S3Credentials, S3Location
from etcd_operator.objectstore import open_reader as _open_reader
from etcd_operator.restore.integrity import Checked, Checker, SnapshotInvalid

ACCESS_KEY = "accessKeyID"
SECRET_KEY = "secretAccessKey"


def s3_location(where: str, credentials_dir: str | None) -> S3Location:
    """`--s3` JSON (bucket, key, endpointURL, region, forcePathStyle) and the mounted Secret."""
    body = json.loads(where)
    credentials = None
    if credentials_dir:
        directory = Path(credentials_dir)
        credentials = S3Credentials(
            (directory / ACCESS_KEY).read_text().strip(),
            (directory / SECRET_KEY).read_text().strip(),
        )
    return S3Location(
        bucket=body["bucket"],
        key=body["key"],
        endpoint_url=body.get("endpointURL"),
        region=body.get("region"),
        force_path_style=bool(body.get("forcePathStyle")),
        credentials=credentials,
    )


async def fetch_s3(location: S3Location, target: Path, expected_sha256: str | None) -> Checked:
    """As `integrity.fetch_file`, from S3: `target` appears only complete and checked."""
    partial = target.with_name(target.name + ".partial")
    checker = Checker()
    try:
        with partial.open("wb") as out:
            async with _open_reader(location) as reader:
                async for chunk in reader:
                    out.write(chunk)
                    checker.update(chunk)
            checked = checker.finish(expected_sha256)
            out.flush()
            os.fsync(out.fileno())
    except NotFound as e:
        partial.unlink(missing_ok=True)
        raise SnapshotInvalid("SnapshotNotFound", f"{location.uri}: {e}") from None
    except ObjectStoreError as e:
        partial.unlink(missing_ok=True)
        raise SnapshotInvalid(e.reason, str(e)) from None
    except SnapshotInvalid:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(target)
    return checked
