"""Where a fanned-out job keeps its pieces: one folder per job, beside its output, in the output's storage.

Everything of one job lives under one folder named by its key: ``s3://<output bucket>/<prefix>/<key>/``
(the prefix is ``STREAMUP_WORK_PREFIX``, default ``streamup-work``) for an S3 output,
``.<output name>.fanout-<key>/`` beside a local one::

    plan.json                 the cut (streamup.fanout.plan)
    seg-00000.mkv             segment 0, video only, upscaled
    seg-00000.json            its record: frames, first/last pts, codec header hash
    stitch.json               the stitch claim: who stitches
    failed.json               the first permanent segment failure: who reported it

Every object is created exclusively (``storage.create_exclusive``: S3 ``If-None-Match: *``, locally a link
into place), so a duplicate delivery never replaces what another published: the loser learns so and reads
the winner's. After a successful stitch the folder is deleted; a lifecycle rule on the prefix removes what
an abandoned job left (``docs/fanout.md``). The object operations are the storage table's; this module only
names the objects and speaks JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

from streamup import config, storage


class WorkArea:
    """The folder of one job's pieces (``root`` is an ``s3://`` prefix or a local directory)."""

    def __init__(self, destination: str, key: str, prefix: str = config.WORK_PREFIX_DEFAULT) -> None:
        """``prefix``: the folder of every job's pieces in an S3 output's bucket (``Config.work_prefix``)."""
        self.key = key
        if destination.startswith("s3://"):
            bucket = destination[len("s3://"):].partition("/")[0]
            self.root = f"s3://{bucket}/{prefix}/{key}"
        else:
            folder, name = os.path.split(os.path.abspath(destination))
            self.root = os.path.join(folder, f".{name}.fanout-{key}")

    def uri(self, name: str) -> str:
        return f"{self.root}/{name}"

    def segment(self, index: int) -> str:
        return self.uri(f"seg-{index:05d}.mkv")

    def record(self, index: int) -> str:
        return self.uri(f"seg-{index:05d}.json")

    def prepare(self) -> None:
        """Make the folder (locally; S3 needs none) before a segment's sink is opened in it."""
        storage.make_folder(self.root)

    def exists(self, uri: str) -> bool:
        return storage.exists(uri)

    def create(self, uri: str, data: dict[str, Any]) -> bool:
        """Create a small JSON object unless one is there: True if this call created it."""
        self.prepare()
        return storage.create_exclusive(uri, json.dumps(data, separators=(",", ":")).encode())

    def read(self, uri: str) -> dict[str, Any] | None:
        """A JSON object's content, or None when there is none."""
        body = storage.read(uri)
        return None if body is None else json.loads(body)

    def remove(self) -> None:
        """Delete the whole folder (after a successful stitch)."""
        storage.remove_prefix(self.root)
