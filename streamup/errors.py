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
