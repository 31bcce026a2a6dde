"""Which failures are the job's fault (fail it for good) and which are the world's (let the message return).

The rule of the issue: a job that would fail the same way again (malformed message, unknown tier, a missing
or unusable input, an output key another job owns) fails permanently; a failure of the storage, the network
or memory leaves the message to come back, and SQS's redrive policy sends it to the dead-letter queue after
the queue's ``maxReceiveCount``. An error nobody anticipated counts as transient too: retrying and then
parking the message in the DLQ loses nothing, deleting it would.

streamup's errors keep the boto error they replaced as ``__context__`` (``raise ... from None`` hides it from
tracebacks but keeps it), so "cannot read input: 503" and "input not found" can be told apart by that cause
rather than by parsing messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamup import storage
from streamup.errors import InputError, ModelError, OutputError, OutputExists, UsageError
from streamup.worker.jobs import InvalidJob, Refused


@dataclass(frozen=True)
class Failure:
    """What the FAILED event says: a stable ``code`` for programs, a one-line ``message`` for people."""

    code: str
    message: str
    permanent: bool


def classify(error: BaseException) -> Failure:
    """The failure an exception from parsing or ``upscale()`` amounts to (never called for ``Cancelled``)."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, Refused):  # the admission policy's: a host, a bucket or a tier limit
        return Failure("JOB_REFUSED", message, True)
    if isinstance(error, InvalidJob):
        return Failure("INVALID_JOB", message, True)
    if isinstance(error, UsageError):
        return Failure("INVALID_PARAMETERS", message, True)
    if isinstance(error, ModelError):  # a download that hit the network (no route, 5xx) may work next time
        return Failure("MODEL_UNAVAILABLE", message, storage.transient(error) is not True)
    if isinstance(error, OutputExists):
        return Failure("OUTPUT_EXISTS", message, True)
    if isinstance(error, InputError):
        transient = storage.transient(error) is True
        return Failure("INPUT_UNREADABLE" if transient else "INPUT_UNUSABLE", message, not transient)
    if isinstance(error, OutputError):
        return Failure("OUTPUT_FAILED", message, storage.transient(error) is False)
    if isinstance(error, MemoryError) or "out of memory" in message.lower():
        return Failure("OUT_OF_MEMORY", message, False)
    return Failure("INTERNAL", f"{type(error).__name__}: {message}", False)

