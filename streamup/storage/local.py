"""Local files: read in place; write beside the destination and rename into place only on success.

An exclusive sink links the finished file into place instead of renaming it: ``link`` fails if the name
exists, where ``rename`` would replace it, so two runs racing for one output cannot both publish."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import BinaryIO

from streamup.errors import InputError, OutputError, OutputExists
from streamup.storage.base import ObjectInfo, Sink, Source


def open_source(path: str) -> Source:
    try:
        f = open(path, "rb")  # noqa: SIM115 - owned by the Source
    except FileNotFoundError:
        raise InputError(f"input not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"input is a directory, not a video: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read input {path}: {e.strerror}") from None
    return Source(f, path, os.fstat(f.fileno()).st_size)


def stat(path: str) -> ObjectInfo | None:
    try:
        return ObjectInfo(size=os.stat(path).st_size)
    except FileNotFoundError:
        return None


def check_sink(path: str, *, exclusive: bool = False) -> None:
    """The destination's folder exists and takes new files (the partial file and the rename need that)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"output is a directory: {path}")
    if exclusive and os.path.lexists(path):
        raise OutputExists(f"output already exists: {path}")
    if not os.path.isdir(directory):
        raise OutputError(f"output directory does not exist: {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write output {path}: permission denied")


class LocalSink(Sink):
    """Writes ``<dir>/.<name>.<random>.partial`` and renames it over ``path`` on commit.

    The partial file sits next to the destination (same filesystem, so the rename is atomic); nothing goes to
    a temporary directory, and a failed or interrupted run removes it.
    """

    seekable = True

    def __init__(self, path: str, *, exclusive: bool = False) -> None:
        self.name = path
        self._exclusive = exclusive
        check_sink(path, exclusive=exclusive)
        directory, base = os.path.split(os.path.abspath(path))
        # unique per writer: two runs aimed at one destination must not write into each other's file
        self._partial = os.path.join(directory, f".{base}.{uuid.uuid4().hex[:8]}.partial")
        try:
            self._file: BinaryIO = open(self._partial, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as e:
            raise OutputError(f"cannot write output {path}: {e.strerror}") from None

    @property
    def file(self) -> BinaryIO:
        return self._file

    def commit(self) -> None:
        self._file.close()
        if not self._exclusive:
            os.replace(self._partial, self.name)
            return
        try:
            os.link(self._partial, self.name)
        except FileExistsError:
            raise OutputExists(f"output already exists: {self.name}") from None
        finally:
            os.unlink(self._partial)

    def abort(self) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the close's flush too: remove the file anyway
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)


def open_sink(path: str, *, content_type: str | None, metadata: dict[str, str] | None,
              exclusive: bool = False) -> LocalSink:
    """A local file has nowhere to keep a content type or metadata: both are ignored."""
    return LocalSink(path, exclusive=exclusive)
