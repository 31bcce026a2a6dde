"""What the pipeline needs of a transport, and nothing more."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO


def extension(uri: str) -> str:
    """The lower-case extension of a path or URI (".mp4"), a query string (presigned URLs) ignored: what
    picks the container."""
    return os.path.splitext(uri.split("?", 1)[0])[1].lower()


@dataclass(frozen=True)
class ObjectInfo:
    """What ``stat`` tells of an existing object: its size, user metadata (lower-case keys) and ETag."""

    size: int
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str | None = None


class Source:
    """A readable, seekable byte stream plus a display name for messages."""

    def __init__(self, file: BinaryIO, name: str, size: int | None) -> None:
        self.file = file
        self.name = name
        self.size = size

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sink:
    """An all-or-nothing destination.

    ``file`` is what the muxer writes to; ``seekable`` tells the muxer whether it may seek back (a plain mp4
    needs that to write its index; a non-seekable sink gets fragmented mp4). ``extension`` (".mp4", ".mkv",
    ...) picks the container.
    """

    name: str
    seekable: bool

    @property
    def extension(self) -> str:
        return extension(self.name)

    @property
    def file(self) -> BinaryIO:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
