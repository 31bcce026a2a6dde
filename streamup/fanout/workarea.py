"""Where a fanned-out job keeps its pieces, and the few object operations it needs.

Everything of one job lives under one folder named by its key: ``s3://<output bucket>/<prefix>/<key>/``
(the prefix is ``STREAMUP_WORK_PREFIX``, default ``streamup-work``) for an S3 output,
``.<output name>.fanout/<key>/`` beside a local one::

    plan.json                 the cut (streamup.fanout.plan)
    seg-00000.mkv             segment 0, video only, upscaled
    seg-00000.json            its record: frames, first/last pts, codec header hash
    stitch.json               the stitch claim: who stitches
    failed.json               the first permanent segment failure: who reported it

Every object is created exclusively (S3: ``If-None-Match: *``; local: link into place), so a duplicate
delivery never replaces what another published: the loser learns so and reads the winner's.
After a successful stitch the folder is deleted; a lifecycle rule on the prefix removes what an abandoned
job left (``docs/fanout.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from typing import Any

import botocore.exceptions

from streamup import config
from streamup.errors import OutputError
from streamup.storage.aws import describe, make_client

WORK_PREFIX_DEFAULT = "streamup-work"
_ABSENT = frozenset({"404", "NoSuchKey", "NotFound"})
_TAKEN = frozenset({"412", "PreconditionFailed", "ConditionalRequestConflict"})  # If-None-Match lost


class WorkArea:
    """The folder of one job's pieces (``root`` is an ``s3://`` prefix or a local directory)."""

    def __init__(self, destination: str, key: str) -> None:
        self.key = key
        self._client: Any = None
        self._bucket = ""
        if destination.startswith("s3://"):
            bucket = destination[len("s3://"):].partition("/")[0]
            prefix = (os.environ.get(config.WORK_PREFIX) or WORK_PREFIX_DEFAULT).strip("/")
            self.root = f"s3://{bucket}/{prefix}/{key}"
            self._bucket = bucket
        else:
            folder, name = os.path.split(os.path.abspath(destination))
            self.root = os.path.join(folder, f".{name}.fanout", key)

    @property
    def remote(self) -> bool:
        return self.root.startswith("s3://")

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}" if self.remote else os.path.join(self.root, name)

    def segment(self, index: int) -> str:
        return self.uri(f"seg-{index:05d}.mkv")

    def record(self, index: int) -> str:
        return self.uri(f"seg-{index:05d}.json")

    def prepare(self) -> None:
        """A local folder must exist before a sink can be opened in it."""
        if not self.remote:
            os.makedirs(self.root, exist_ok=True)

    def exists(self, uri: str) -> bool:
        if not self.remote:
            return os.path.exists(uri)
        return self._call("look at", uri, "head_object", _ABSENT) is not None

    def create(self, uri: str, data: dict[str, Any]) -> bool:
        """Create a small JSON object unless one is there: True if this call created it."""
        body = json.dumps(data, separators=(",", ":")).encode()
        if not self.remote:
            self.prepare()
            partial = f"{uri}.{os.getpid()}.{threading.get_ident()}.partial"
            with open(partial, "wb") as f:
                f.write(body)
            try:
                os.link(partial, uri)  # fails if the name exists, where a rename would replace it
            except FileExistsError:
                return False
            finally:
                os.unlink(partial)
            return True
        return self._call("write", uri, "put_object", _TAKEN, Body=body, ContentType="application/json",
                          IfNoneMatch="*") is not None

    def read(self, uri: str) -> dict[str, Any] | None:
        """A JSON object's content, or None when there is none."""
        if not self.remote:
            try:
                with open(uri, "rb") as f:
                    return json.loads(f.read())
            except FileNotFoundError:
                return None
        got = self._call("read", uri, "get_object", _ABSENT)
        return None if got is None else json.loads(got["Body"].read())

    def remove(self) -> None:
        """Delete the whole folder (after a successful stitch)."""
        if not self.remote:
            shutil.rmtree(self.root, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.root))  # .<name>.fanout, when no other job is in it
            return
        client = self._s3()
        prefix = self._key(self.root) + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})

    def _call(self, what: str, uri: str, method: str, quiet: frozenset[str], **kwargs: Any) -> Any:
        """One S3 call on ``uri``; None when S3 answers one of the ``quiet`` codes (no such object, or one
        is there already); any other failure is an ``OutputError`` naming the object."""
        try:
            return getattr(self._s3(), method)(Bucket=self._bucket, Key=self._key(uri), **kwargs)
        except botocore.exceptions.ClientError as e:
            if str(e.response.get("Error", {}).get("Code", "")) in quiet:
                return None
            raise OutputError(f"cannot {what} {uri}: {describe(e)}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise OutputError(f"cannot {what} {uri}: {describe(e)}") from e

    def _s3(self) -> Any:
        """One client per work area: building one costs 50-700 ms (botocore loads its service model)."""
        if self._client is None:
            self._client = make_client()
        return self._client

    def _key(self, uri: str) -> str:
        return uri[len(f"s3://{self._bucket}/"):]
