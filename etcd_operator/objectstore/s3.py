"""Snapshots as S3 objects, through boto3's client: a multipart upload, aborted on failure.

A multipart upload becomes an object only when it is completed, at once; an aborted one
leaves nothing behind. Parts of `part_size` bytes are uploaded by worker threads (boto3
clients are thread-safe) while the next part fills, at most two at a time, so memory is
about three parts (8 MiB each by default) whatever the snapshot's size. The manifest object
is put after the snapshot object was completed and its size checked.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from etcd_operator.objectstore.errors import NotFound, ObjectStoreError
from etcd_operator.objectstore.location import S3Location
from etcd_operator.objectstore.manifest import Manifest
from etcd_operator.objectstore.stream import DEFAULT_PART_SIZE, SnapshotReader, SnapshotWriter

IN_FLIGHT = 2
READ_CHUNK = 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "NotFound", "404", "NoSuchUpload"}


def client(location: S3Location) -> Any:
    config = Config(
        region_name=location.region,
        s3={"addressing_style": "path" if location.force_path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=120,
        # Checksums only where S3 requires them: many S3-compatible stores refuse the
        # newer flexible checksums; integrity is checked end to end by sha256 anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    keys: dict[str, str] = {}
    if location.credentials is not None:
        keys = {
            "aws_access_key_id": location.credentials.access_key_id,
            "aws_secret_access_key": location.credentials.secret_access_key,
        }
    return boto3.session.Session().client(
        "s3", endpoint_url=location.endpoint_url, config=config, **keys
    )


def store_error(location: S3Location, operation: str, e: Exception) -> ObjectStoreError:
    """A boto3 failure as an ObjectStoreError: the store's own code as the reason."""
    if isinstance(e, ClientError):
        error = e.response.get("Error", {})
        code = str(
            error.get("Code") or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        )
        message = str(error.get("Message") or "").strip()
        text = f"{operation} {location.uri}: {code}" + (f": {message}" if message else "")
        if code in _NOT_FOUND:
            return NotFound(text)
        reason = code if code.isidentifier() else f"HTTP{code}"
        return ObjectStoreError(text, reason=reason)
    reason = type(e).__name__.removesuffix("Error") or "S3Error"
    return ObjectStoreError(f"{operation} {location.uri}: {e}", reason=reason)


async def _call(location: S3Location, operation: str, fn: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, **kwargs)
    except (ClientError, BotoCoreError) as e:
        raise store_error(location, operation, e) from None


def _sse(location: S3Location) -> dict[str, str]:
    if location.encryption is None:
        return {}
    sse: dict[str, str] = {"ServerSideEncryption": location.encryption.algorithm}
    if location.encryption.kms_key_id is not None:
        sse["SSEKMSKeyId"] = location.encryption.kms_key_id
    return sse


class S3Writer(SnapshotWriter):
    def __init__(self, location: S3Location, *, part_size: int = DEFAULT_PART_SIZE) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.location = location
        self.part_size = part_size
        self._s3 = client(location)
        self._upload_id: str | None = None
        self._pending: list[bytes] = []  # chunks of the part being filled
        self._pending_size = 0
        self._parts: list[asyncio.Task[dict[str, Any]]] = []
        self.size = 0

    async def start(self) -> None:
        upload = await _call(
            self.location,
            "CreateMultipartUpload",
            self._s3.create_multipart_upload,
            Bucket=self.location.bucket,
            Key=self.location.key,
            ContentType="application/octet-stream",
            **_sse(self.location),
        )
        self._upload_id = str(upload["UploadId"])

    async def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= self.part_size:
            await self._send(self._take())

    def _take(self) -> bytes:
        # One allocation per part (joined once), never a growing buffer copied again.
        part = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        return part

    async def _send(self, part: bytes) -> None:
        # Back-pressure: wait for the oldest upload before a third starts.
        running = [t for t in self._parts if not t.done()]
        if len(running) >= IN_FLIGHT:
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in self._parts:
            if task.done():
                task.result()  # re-raises a failed part's error now, not at the end
        number = len(self._parts) + 1
        self._parts.append(asyncio.create_task(self._upload_part(number, part)))

    async def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        answer = await _call(
            self.location,
            "UploadPart",
            self._s3.upload_part,
            Bucket=self.location.bucket,
            Key=self.location.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def commit(self, manifest: Manifest) -> None:
        if self.committed:
            return
        if self._pending or not self._parts:  # the last part may be small (or empty)
            await self._send(self._take())
        parts = list(await asyncio.gather(*self._parts))
        await _call(
            self.location,
            "CompleteMultipartUpload",
            self._s3.complete_multipart_upload,
            Bucket=self.location.bucket,
            Key=self.location.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._upload_id = None
        head = await _call(
            self.location,
            "HeadObject",
            self._s3.head_object,
            Bucket=self.location.bucket,
            Key=self.location.key,
        )
        if int(head["ContentLength"]) != manifest.size:
            raise ObjectStoreError(
                f"{self.location.uri}: stored {head['ContentLength']} bytes, wrote {manifest.size}",
                reason="SizeMismatch",
            )
        target = self.location.manifest()
        await _call(
            target,
            "PutObject",
            self._s3.put_object,
            Bucket=target.bucket,
            Key=target.key,
            Body=manifest.to_json(),
            ContentType="application/json",
            **_sse(target),
        )
        self.committed = True

    async def abort(self) -> None:
        for task in self._parts:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._parts, return_exceptions=True)
        self._parts.clear()
        self._pending, self._pending_size = [], 0
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None and not self.committed:
            # Best effort: a store's lifecycle rule reaps uploads that an abort never reached.
            with contextlib.suppress(ObjectStoreError):
                await _call(
                    self.location,
                    "AbortMultipartUpload",
                    self._s3.abort_multipart_upload,
                    Bucket=self.location.bucket,
                    Key=self.location.key,
                    UploadId=upload_id,
                )


class S3Reader(SnapshotReader):
    def __init__(self, location: S3Location) -> None:
        super().__init__()
        self.location = location
        self._s3 = client(location)
        self._body: Any = None

    async def start(self) -> None:
        answer = await _call(
            self.location,
            "GetObject",
            self._s3.get_object,
            Bucket=self.location.bucket,
            Key=self.location.key,
        )
        self._body = answer["Body"]

    async def _next_chunk(self) -> bytes:
        try:
            chunk: bytes = await asyncio.to_thread(self._body.read, READ_CHUNK)
        except (BotoCoreError, OSError) as e:
            raise store_error(self.location, "GetObject", e) from None
        return chunk

    async def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


async def delete_object(location: S3Location) -> None:
    """DeleteObject: S3 answers the same whether the key existed or not."""
    s3 = client(location)
    with contextlib.suppress(NotFound):  # some S3-compatible stores answer 404 for it
        await _call(
            location, "DeleteObject", s3.delete_object, Bucket=location.bucket, Key=location.key
        )
