"""``s3://bucket/key``: ranged reads in, multipart upload out, configured the way every AWS tool is.

Configuration is boto3's own (``streamup.storage.aws`` builds the client); ``AWS_ENDPOINT_URL_S3`` points at
MinIO and other S3-compatible stores (path-style addressing is then automatic).

Both ends check the remote side before the pipeline does any heavy work: the source with a HEAD (exists,
readable, size), the sink by starting the multipart upload (bucket exists and accepts writes). Both fail in
seconds with one line.

Why not smart_open's writer: its ``close()`` completes the upload, and FFmpeg closes its output at the end of
every run, failed or not (and ``IOBase.__del__`` calls ``close()`` too), so a partial video would appear.
Here closing the file only ends writing; ``commit`` completes and ``abort`` aborts the upload.

Exclusive creation is one conditional request (``_create``: ``If-None-Match: *``), whether it completes an
exclusive sink's upload or puts one of the fan-out's small objects.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import urllib3.exceptions

from streamup.errors import InputError, OutputError, OutputExists, StreamupError
from streamup.storage.aws import ERRORS, describe, error_code, shared_client
from streamup.storage.base import ObjectInfo, Sink, Source
from streamup.storage.ranged import RangedReader

log = logging.getLogger(__name__)

#: Part size of the first 1000 parts; it grows by this much every 1000 parts, so the 10 000-part limit of S3
#: allows ~430 GiB while a short video never holds more than one small part in memory.
PART_SIZE = 8 * 1024 * 1024
PARTS_PER_STEP = 1000

#: Errors of a response body that broke mid-read: the ranged reader retries the range.
TRANSIENT_READ_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ResponseStreamingError,
    urllib3.exceptions.ProtocolError,
    ConnectionError,
)

_CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
                  ".mkv": "video/x-matroska", ".webm": "video/webm"}


def parse_s3_uri(uri: str, error: type[StreamupError]) -> tuple[str, str]:
    """Split ``s3://bucket/key``; ``error`` is the side (input or output) a malformed URI is blamed on."""
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise error(f"not an object URI (want s3://bucket/key): {uri}")
    return bucket, key


def open_source(uri: str) -> Source:
    bucket, key = parse_s3_uri(uri, InputError)
    client = shared_client()
    head = _head(client, bucket, key, uri)
    if head is None:
        raise InputError(f"input not found: {uri}")
    etag = head.get("ETag")

    def fetch(start: int, stop: int) -> bytes:
        # IfMatch pins the object: if it is overwritten mid-run the read fails instead of splicing versions.
        kwargs = {"IfMatch": etag} if etag else {}
        try:
            response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{stop - 1}", **kwargs)
        except ERRORS as e:
            raise InputError(f"cannot read input {uri}: {describe(e)}") from None  # botocore has retried
        with response["Body"] as body:  # a body that breaks here is retried by the reader
            return body.read()

    reader = RangedReader(fetch, int(head["ContentLength"]), uri, transient=TRANSIENT_READ_ERRORS)
    return Source(reader, uri, reader.size)


def content_type_for(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return _CONTENT_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def _header_safe(value: str) -> str:
    """S3 user metadata travels as HTTP headers: ASCII only. Drop query strings (a presigned URL's
    signature must not be copied onto the output) and escape the rest."""
    if "://" in value:
        value = value.split("?", 1)[0]
    return value.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace("\n", " ")


def stat(uri: str) -> ObjectInfo | None:
    """HEAD the object: None when there is none; any other failure is an ``InputError`` naming the reason."""
    bucket, key = parse_s3_uri(uri, InputError)
    head = _head(shared_client(), bucket, key, uri)
    if head is None:
        return None
    return ObjectInfo(size=int(head["ContentLength"]), metadata=dict(head.get("Metadata") or {}),
                      etag=head.get("ETag"))


def _head(client: Any, bucket: str, key: str, uri: str,
          side: type[StreamupError] = InputError) -> dict[str, Any] | None:
    """The object's HEAD, None when there is none; another failure is ``side``'s (the input's, or an
    output's when looking at what is there already)."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ERRORS as e:
        reason = describe(e)
        if reason == "no such object":
            return None
        what = "read input" if side is InputError else "look at"
        raise side(f"cannot {what} {uri}: {reason}") from None


def check_sink(uri: str, *, exclusive: bool = False) -> None:
    """Start a multipart upload and abort it: the one cheap proof that the bucket exists and takes writes
    (a HEAD on the bucket needs s3:ListBucket, which a writer need not have). ``exclusive``: an existing
    object is ``OutputExists`` (with its metadata), before any work."""
    S3Sink(uri, content_type=None, metadata=None).abort()
    if exclusive:
        bucket, key = parse_s3_uri(uri, OutputError)
        if (head := _head(shared_client(), bucket, key, uri, OutputError)) is not None:
            raise OutputExists(f"output already exists: {uri}", head.get("Metadata"))


def open_sink(uri: str, *, content_type: str | None, metadata: dict[str, str] | None,
              exclusive: bool = False) -> S3Sink:
    return S3Sink(uri, content_type=content_type, metadata=metadata, exclusive=exclusive)


class _PartWriter:
    """The muxer's file: buffers one part and uploads it when full; not seekable, so FFmpeg never seeks.

    ``close`` (FFmpeg calls it when the container closes, success or not) only stops further writes; whether
    the upload is completed or aborted is decided by the sink's commit/abort.
    """

    def __init__(self, sink: S3Sink) -> None:
        self._sink = sink
        self._buffer = bytearray()
        self._written = 0
        self.closed = False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._written

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("write to a closed output")
        n = len(memoryview(data).cast("B"))
        self._buffer += data
        self._written += n
        while len(self._buffer) >= self._sink.part_size():
            size = self._sink.part_size()
            with memoryview(self._buffer) as view:
                part = bytes(view[:size])  # one copy: botocore wants bytes, the buffer must shrink
            self._sink.upload_part(part)
            del self._buffer[:size]
        return n

    def flush(self) -> None:
        """Parts go up when full (S3 needs >= 5 MiB per part): nothing to do until then."""

    def take_rest(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def close(self) -> None:
        self.closed = True


class S3Sink(Sink):
    """A multipart upload: the object exists only after ``commit``; ``abort`` leaves no object, no upload.

    ``exclusive`` completes the upload with ``If-None-Match: *``: if another writer published the key first,
    S3 answers 412 and this upload is aborted with ``OutputExists``; two racing runs never both publish.
    """

    seekable = False

    def __init__(self, uri: str, *, content_type: str | None, metadata: dict[str, str] | None,
                 part_size: int | None = None, exclusive: bool = False) -> None:
        self.name = uri
        self._exclusive = exclusive
        self._bucket, self._key = parse_s3_uri(uri, OutputError)
        self._client = shared_client()
        self._base_part_size = part_size or PART_SIZE
        self._parts: list[dict[str, Any]] = []
        meta = {k.lower(): _header_safe(str(v)) for k, v in (metadata or {}).items()}
        try:
            created = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key,
                ContentType=content_type or content_type_for(self._key), Metadata=meta)
        except ERRORS as e:
            reason = describe(e)
            if reason == "no such bucket":
                raise OutputError(f"output bucket does not exist: s3://{self._bucket}") from None
            raise OutputError(f"cannot write output {uri}: {reason}") from None
        self._upload_id: str | None = created["UploadId"]
        self._file = _PartWriter(self)

    @property
    def file(self) -> _PartWriter:  # type: ignore[override]
        return self._file

    def part_size(self) -> int:
        return self._base_part_size * (1 + len(self._parts) // PARTS_PER_STEP)

    def upload_part(self, data: bytes) -> None:
        if self._upload_id is None:
            raise OutputError(f"upload of {self.name} is no longer open")
        number = len(self._parts) + 1
        try:
            response = self._client.upload_part(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                                                PartNumber=number, Body=data)
        except ERRORS as e:
            raise OutputError(f"upload of {self.name} failed at part {number}: {describe(e)}") from None
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def commit(self) -> None:
        """Upload what is left and complete; any failure on the way aborts, so nothing is left behind."""
        try:
            self._file.close()
            rest = self._file.take_rest()
            if rest or not self._parts:
                self.upload_part(rest)
            if not _create(self._client.complete_multipart_upload, self.name, "complete upload of",
                           exclusive=self._exclusive, Bucket=self._bucket, Key=self._key,
                           UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}):
                head = _head(self._client, self._bucket, self._key, self.name, OutputError) or {}
                raise OutputExists(f"output already exists: {self.name}", head.get("Metadata"))
        except BaseException:
            self.abort()
            raise
        self._upload_id = None

    def abort(self) -> None:
        """Idempotent and quiet: it runs on the way out of a failure that is already being reported."""
        self._file.close()
        self._file.take_rest()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
        except ERRORS as e:
            log.warning("could not abort the upload of %s (%s); a bucket lifecycle rule "
                        "AbortIncompleteMultipartUpload removes it later", self.name, describe(e))


def _create(request: Callable[..., Any], uri: str, what: str, *, exclusive: bool, **kwargs: Any) -> bool:
    """One request that publishes ``uri``; ``exclusive`` sends it with ``If-None-Match: *``, and False means
    S3 refused because an object is there (412, or 409 to two racing requests). True: this call published.
    Any other failure is an ``OutputError`` (botocore has retried)."""
    try:
        request(**kwargs, **({"IfNoneMatch": "*"} if exclusive else {}))
    except ERRORS as e:
        if exclusive and error_code(e) in {"412", "PreconditionFailed", "ConditionalRequestConflict"}:
            return False
        raise OutputError(f"cannot {what} {uri}: {describe(e)}") from None
    return True


# -- the fan-out's small objects (streamup.fanout.workarea) --------------------------------------------------


def exists(uri: str) -> bool:
    bucket, key = parse_s3_uri(uri, OutputError)
    return _head(shared_client(), bucket, key, uri, OutputError) is not None


def read(uri: str) -> bytes | None:
    bucket, key = parse_s3_uri(uri, OutputError)
    try:
        response = shared_client().get_object(Bucket=bucket, Key=key)
    except ERRORS as e:
        if describe(e) == "no such object":
            return None
        raise OutputError(f"cannot read {uri}: {describe(e)}") from None
    with response["Body"] as body:
        return body.read()


def create_exclusive(uri: str, data: bytes) -> bool:
    bucket, key = parse_s3_uri(uri, OutputError)
    return _create(shared_client().put_object, uri, "write", exclusive=True, Bucket=bucket, Key=key,
                   Body=data, ContentType=content_type_for(key))


def make_folder(uri: str) -> None:
    """A key needs no folder: nothing to make."""


def remove_prefix(uri: str) -> None:
    """Delete every object under ``uri/``, a page (up to 1000 keys) per request."""
    bucket, prefix = parse_s3_uri(uri.rstrip("/"), OutputError)  # never a whole bucket
    client = shared_client()
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                continue
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            if failed := answer.get("Errors"):
                raise OutputError(f"cannot remove s3://{bucket}/{failed[0].get('Key')}: "
                                  f"{failed[0].get('Message') or failed[0].get('Code')}")
    except ERRORS as e:
        raise OutputError(f"cannot remove {uri}: {describe(e)}") from None
