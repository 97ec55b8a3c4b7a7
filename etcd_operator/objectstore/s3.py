"""Snapshots as S3 objects, through boto3's client: a multipart upload, aborted on failure.

A multipart upload becomes an object only when it is completed, at once; an aborted one
leaves nothing behind. Parts of `part_size` bytes are uploaded by worker threads (boto3
clients are thread-safe) while the next part fills, at most two at a time (pipeline.py),
so memory is three part buffers (8 MiB each by default) whatever the snapshot's size.
The manifest object is put after the snapshot object was completed and its size checked.
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
from etcd_operator.objectstore.pipeline import Pipeline
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
    """Chunks copied into part buffers that are reused once their upload ended: memory is
    IN_FLIGHT + 1 parts, allocated once, whatever the snapshot's size."""

    def __init__(self, location: S3Location, *, part_size: int = DEFAULT_PART_SIZE) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.location = location
        self.part_size = part_size
        self._s3 = client(location)
        self._upload_id: str | None = None
        self._jobs = Pipeline("snapshot-s3", workers=IN_FLIGHT, depth=IN_FLIGHT)
        self._buffer: bytearray | None = None  # the part being filled
        self._filled = 0
        self._uploading: list[tuple[asyncio.Future[dict[str, Any]], bytearray]] = []
        self._free: list[bytearray] = []
        self._parts: list[asyncio.Future[dict[str, Any]]] = []
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
        view = memoryview(chunk)
        while view:
            if self._buffer is None:
                self._buffer, self._filled = self._take_buffer(), 0
            n = min(len(view), self.part_size - self._filled)
            self._buffer[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == self.part_size:
                await self._send()

    def _take_buffer(self) -> bytearray:
        # After a submit at most IN_FLIGHT uploads run: one of IN_FLIGHT + 1 buffers is free.
        for job, buffer in [u for u in self._uploading if u[0].done()]:
            self._uploading.remove((job, buffer))
            self._free.append(buffer)
        return self._free.pop() if self._free else bytearray(self.part_size)

    async def _send(self) -> None:
        buffer = self._buffer if self._buffer is not None else bytearray()
        if self._filled < len(buffer):
            del buffer[self._filled :]  # the last, short part: shrunk in place, not copied
        self._buffer, self._filled = None, 0
        job = await self._jobs.submit(self._upload_part, len(self._parts) + 1, buffer)
        self._parts.append(job)
        self._uploading.append((job, buffer))

    def _upload_part(self, number: int, body: bytearray) -> dict[str, Any]:
        # In a pipeline worker thread (boto3 clients are thread-safe).
        try:
            answer = self._s3.upload_part(
                Bucket=self.location.bucket,
                Key=self.location.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        except (ClientError, BotoCoreError) as e:
            raise store_error(self.location, "UploadPart", e) from None
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def commit(self, manifest: Manifest) -> None:
        if self.committed:
            return
        if self._buffer is not None or not self._parts:  # the last part may be small (or empty)
            await self._send()
        await self._jobs.drain()
        parts = [job.result() for job in self._parts]
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
        # Queued parts never start and running ones end first: no part is stored after
        # the abort below (S3 keeps a part whose upload outlived the abort).
        await self._jobs.close()
        self._parts.clear()
        self._uploading.clear()
        self._free.clear()
        self._buffer = None
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
