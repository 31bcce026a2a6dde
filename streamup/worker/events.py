"""Status events: the JSON the worker sends to ``STATUS_QUEUE_URL`` (``schemas/status-event.schema.json``).

``RUNNING`` when work starts, ``PROGRESS`` each time another 5 % of the frames is done, then ``SUCCEEDED``
(with the output, frame count, seconds and the device that really ran it) or ``FAILED`` (with
``error: {code, message, permanent}``; ``permanent: false`` means the message will come back, or go to the
dead-letter queue after the last attempt). A duplicate delivery of a finished job gets ``SUCCEEDED`` again
with ``duplicate: true`` (its frames and seconds are those of the run that published, which it did not see,
so they are null). Events are built anywhere but sent only from the worker's consumer thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from streamup import observe

if TYPE_CHECKING:
    from streamup.pipeline import UpscaleResult
    from streamup.worker.failures import Failure

#: An event's ``status``, in the contract's upper case. The two final ones are the run outcomes of
#: ``streamup.observe`` (the metrics' ``status`` label): one vocabulary, spelt as each reader expects.
RUNNING, PROGRESS = "RUNNING", "PROGRESS"
SUCCEEDED, FAILED = observe.SUCCEEDED.upper(), observe.FAILED.upper()
STEP_PERCENT = 5


def timestamp() -> str:
    """UTC, ISO 8601 with milliseconds, as Java's ``Instant.parse`` reads it."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def event(job_id: str | None, status: str, progress: int, **extra: Any) -> dict[str, Any]:
    return {"jobId": job_id, "status": status, "progress": progress, "timestamp": timestamp(), **extra}


def device_used(device: str) -> str:
    """The job's vocabulary (``cpu``/``gpu``) for where torch ran (``cpu``/``cuda``)."""
    return "gpu" if device.startswith("cuda") else "cpu"


def progress_step(fraction: float | None) -> int:
    """The 5 % step a run has reached (0-100); PROGRESS is sent when this grows."""
    if fraction is None:
        return 0
    return min(100, int(fraction * 100 + 1e-9) // STEP_PERCENT * STEP_PERCENT)


def succeeded(job_id: str, output: str, result: UpscaleResult) -> dict[str, Any]:
    return event(job_id, SUCCEEDED, 100, outputUri=output, frames=result.frames,
                 seconds=round(result.seconds, 3), deviceUsed=device_used(result.device))


def already_done(job_id: str, output: str, device: str | None) -> dict[str, Any]:
    return event(job_id, SUCCEEDED, 100, outputUri=output, frames=None, seconds=None,
                 deviceUsed=device_used(device) if device else None, duplicate=True)


def failed(job_id: str | None, failure: Failure, progress: int) -> dict[str, Any]:
    return event(job_id, FAILED, progress,
                 error={"code": failure.code, "message": failure.message, "permanent": failure.permanent})
