"""Errors a user can act on.

Every failure that reaches a face (CLI, worker) is one of these, so that the face can print one line and pick
an exit status without inspecting tracebacks. Anything else is a bug and is reported as such.
"""

from __future__ import annotations


class StreamupError(Exception):
    """A failure with a message fit for one line on stderr; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class UsageError(StreamupError):
    """Bad flags or option values: the caller asked for something that cannot be done (exit 2)."""

    exit_code = 2


class InputError(StreamupError):
    """The source is missing, unreadable, or not a usable video (exit 2)."""

    exit_code = 2


class ModelError(StreamupError):
    """A weights file is missing, corrupt, not a super-resolution model, or of the wrong scale."""

    exit_code = 2


class OutputError(StreamupError):
    """The destination cannot be written (exit 1: the input was fine)."""


class Cancelled(StreamupError):
    """The run was stopped from outside (SIGINT/SIGTERM or a worker shutting down)."""

    exit_code = 130


class OutputExists(OutputError):
    """An exclusive run (``upscale(..., exclusive=True)``) found its destination already there, before any
    work or at the final publish (another run won the race). ``metadata`` is the existing object's user
    metadata (lower-case keys; empty for local files), so a worker can tell its own earlier output apart."""

    def __init__(self, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.metadata = dict(metadata or {})


def one_line(e: BaseException) -> str:
    """The error as a face reports it on one line: its message with whitespace folded, and any error that
    is not a ``StreamupError`` marked as the bug it is (``internal error: Type: message``)."""
    text = " ".join(str(e).split())
    return text if isinstance(e, StreamupError) else f"internal error: {type(e).__name__}: {text}"
