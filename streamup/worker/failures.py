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

import urllib.error
from dataclasses import dataclass

import botocore.exceptions
import urllib3.exceptions

from streamup.errors import InputError, ModelError, OutputError, OutputExists, UsageError
from streamup.worker.jobs import InvalidJob

#: S3/SQS error codes that mean "slow down / try later", whatever the HTTP status says.
_THROTTLING = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                         "RequestTimeTooSkewed", "ServiceUnavailable", "InternalError"})
_NETWORK = (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, urllib.error.URLError,
            ConnectionError, TimeoutError)


@dataclass(frozen=True)
class Failure:
    """What the FAILED event says: a stable ``code`` for programs, a one-line ``message`` for people."""

    code: str
    message: str
    permanent: bool


def classify(error: BaseException) -> Failure:
    """The failure an exception from parsing or ``upscale()`` amounts to (never called for ``Cancelled``)."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, InvalidJob):
        return Failure("INVALID_JOB", message, True)
    if isinstance(error, UsageError):
        return Failure("INVALID_PARAMETERS", message, True)
    if isinstance(error, ModelError):  # a download that hit the network (no route, 5xx) may work next time
        return Failure("MODEL_UNAVAILABLE", message, _transient_cause(error) is not True)
    if isinstance(error, OutputExists):
        return Failure("OUTPUT_EXISTS", message, True)
    if isinstance(error, InputError):
        transient = _transient_cause(error) is True
        return Failure("INPUT_UNREADABLE" if transient else "INPUT_UNUSABLE", message, not transient)
    if isinstance(error, OutputError):
        return Failure("OUTPUT_FAILED", message, _transient_cause(error) is False)
    if isinstance(error, MemoryError) or "out of memory" in message.lower():
        return Failure("OUT_OF_MEMORY", message, False)
    return Failure("INTERNAL", f"{type(error).__name__}: {message}", False)


def _transient_cause(error: BaseException) -> bool | None:
    """True: a 5xx, throttling or network error is somewhere in the chain; False: a 4xx refusal is;
    None: no remote error at all (the failure is about the bytes, e.g. not a video)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, botocore.exceptions.ClientError):
            code = str(cause.response.get("Error", {}).get("Code", ""))
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            return status >= 500 or status == 429 or code in _THROTTLING
        if isinstance(cause, _NETWORK):
            return True
        cause = cause.__cause__ or cause.__context__
    return None
