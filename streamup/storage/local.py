"""Local files: read in place; write beside the destination and rename into place only on success.

Every file is written under a partial name beside its destination (same filesystem, so publishing it is one
atomic step) and published by ``_publish``: a rename, or, for an exclusive write, a link, which fails if the
name exists where a rename would replace it, so two writers racing for one name cannot both publish. An
exclusive sink and ``create_exclusive`` (the fan-out's small objects) are the same link."""

from __future__ import annotations

import contextlib
import os
import shutil
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


def _partial(path: str) -> str:
    """``<dir>/.<name>.<random>.partial``: unique per writer, so two writers aimed at one name never write
    into each other's file; beside the destination, so publishing it never copies."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:8]}.partial")


def _publish(partial: str, path: str, *, exclusive: bool) -> bool:
    """Move the finished ``partial`` to ``path``; ``exclusive``: unless ``path`` exists (False, and the
    partial is removed: the other writer's file stays)."""
    if not exclusive:
        os.replace(partial, path)
        return True
    try:
        os.link(partial, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(partial)
    return True


class LocalSink(Sink):
    """Writes a partial file beside ``path`` and publishes it on commit; a failed or interrupted run removes
    it, and nothing goes to a temporary directory."""

    seekable = True

    def __init__(self, path: str, *, exclusive: bool = False) -> None:
        self.name = path
        self._exclusive = exclusive
        check_sink(path, exclusive=exclusive)
        self._partial = _partial(path)
        try:
            self._file: BinaryIO = open(self._partial, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as e:
            raise OutputError(f"cannot write output {path}: {e.strerror}") from None

    @property
    def file(self) -> BinaryIO:
        return self._file

    def commit(self) -> None:
        self._file.close()
        if not _publish(self._partial, self.name, exclusive=self._exclusive):
            raise OutputExists(f"output already exists: {self.name}")

    def abort(self) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the close's flush too: remove the file anyway
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)


def open_sink(path: str, *, content_type: str | None, metadata: dict[str, str] | None,
              exclusive: bool = False) -> LocalSink:
    """A local file has nowhere to keep a content type or metadata: both are ignored."""
    return LocalSink(path, exclusive=exclusive)


# -- the fan-out's small objects (streamup.fanout.workarea) --------------------------------------------------


def exists(path: str) -> bool:
    return os.path.exists(path)


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise OutputError(f"cannot read {path}: {e.strerror}") from None


def create_exclusive(path: str, data: bytes) -> bool:
    partial = _partial(path)
    try:
        with open(partial, "wb") as f:
            f.write(data)
    except OSError as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    return _publish(partial, path, exclusive=True)


def make_folder(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot make folder {path}: {e.strerror}") from None


def remove_prefix(path: str) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return  # not there, or another remover is deleting it too
    except OSError as e:
        raise OutputError(f"cannot remove {e.filename or path}: {e.strerror}") from None
