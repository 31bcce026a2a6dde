"""What a failed delivery becomes: the FAILED event, and whether its message is deleted or comes back.

``failures.classify`` says whose fault a failure is; this module turns that into an ``Outcome``. A permanent
failure deletes the message. A transient one sets it to come back after an exponential backoff; on the
queue's last counted receive the event says ``permanent: true`` and that the message goes to the
dead-letter queue, so nothing reaches the DLQ without a FAILED event saying so (releases do not count as
receives: ``worker/queue.py``).
"""

from __future__ import annotations

import logging

from streamup.errors import Cancelled, OutputExists
from streamup.observe import CANCELLED, FAILED, RETRIED
from streamup.worker import events
from streamup.worker.failures import Failure, classify
from streamup.worker.queue import DELETE, RETRY, Delivery, Outcome

log = logging.getLogger("streamup")

#: Transient failures come back after retry_delay x 2^(attempt-1), at most this long (15 min: a store or a
#: network that is down longer than that is an outage for an operator, not a retry loop).
MAX_BACKOFF_S = 900


class Policy:
    """Failure decisions for one queue: ``retry_delay_s`` starts the backoff; ``dead_letter_after`` is the
    queue's dead-letter limit (None: no dead-letter queue, transient failures retry forever)."""

    def __init__(self, retry_delay_s: int, dead_letter_after: int | None) -> None:
        self.retry_delay_s = retry_delay_s
        self.dead_letter_after = dead_letter_after

    def failure(self, delivery: Delivery, error: BaseException, job_id: str | None,
                progress: int = 0) -> Outcome:
        """The outcome of ``error`` on ``delivery`` (never called for ``Cancelled``)."""
        failure = classify(error)
        if failure.permanent:
            return self.fail(job_id, failure, progress)
        limit = self.dead_letter_after
        if limit is not None and delivery.receive_count >= limit:
            last = f" (attempt {delivery.receive_count} of {limit}: message goes to the dead-letter queue)"
            failure = Failure(failure.code, failure.message + last, True)
        return self.fail(job_id, failure, progress, RETRY, self.backoff(delivery))

    def fail(self, job_id: str | None, failure: Failure, progress: int, action: str = DELETE,
             delay_s: int = 0) -> Outcome:
        """FAILED with ``failure``, logged once, and the message deleted (or retried after ``delay_s``)."""
        again = f"; back in the queue in {delay_s} s" if action == RETRY else ""
        log.warning("job %s failed (%s%s): %s", job_id or "(no id)", failure.code, again, failure.message,
                    extra={"fields": {"event": "job", "job": job_id, "status": "failed", "code": failure.code,
                                      "permanent": failure.permanent}})
        return Outcome(action, events.failed(job_id, failure, progress), delay_s)

    def backoff(self, delivery: Delivery) -> int:
        """Seconds before a transiently failed delivery comes back."""
        return min(MAX_BACKOFF_S, self.retry_delay_s * 2 ** max(0, delivery.receive_count - 1))


def observed_status(error: BaseException) -> str:
    """How observers count a run that raised: a lost publish race was another delivery's success and an
    interrupt is no failure (both ``cancelled``); a transient failure is ``retried``."""
    if isinstance(error, (Cancelled, OutputExists)) or not isinstance(error, Exception):
        return CANCELLED
    return FAILED if classify(error).permanent else RETRIED
