"""Local files: read in place; write beside the destination and rename into place only on success."""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

from streamup.errors import InputError, OutputError
from streamup.storage.base import Sink, Source


def open_local_source(path: str) -> Source:
    try:
        f = open(path, "rb")  # noqa: SIM115 - owned by the Source
    except FileNotFoundError:
        raise InputError(f"input not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"input is a directory, not a video: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read input {path}: {e.strerror}") from None
    return Source(f, path, os.fstat(f.fileno()).st_size)


def check_local_destination(path: str) -> None:
    """The destination's folder exists and takes new files (the partial file and the rename need that)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"output is a directory: {path}")
    if not os.path.isdir(directory):
        raise OutputError(f"output directory does not exist: {directory}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write output {path}: permission denied")


class LocalSink(Sink):
    """Writes ``<dir>/.<name>.partial`` and renames it over ``path`` on commit.

    The partial file sits next to the destination (same filesystem, so the rename is atomic); nothing goes to
    a temporary directory, and a failed or interrupted run removes it.
    """

    seekable = True

    def __init__(self, path: str) -> None:
        self.name = path
        check_local_destination(path)
        directory, base = os.path.split(os.path.abspath(path))
        self._partial = os.path.join(directory, f".{base}.partial")
        try:
            self._file: BinaryIO = open(self._partial, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as e:
            raise OutputError(f"cannot write output {path}: {e.strerror}") from None

    @property
    def file(self) -> BinaryIO:
        return self._file

    def commit(self) -> None:
        self._file.close()
        os.replace(self._partial, self.name)

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)
