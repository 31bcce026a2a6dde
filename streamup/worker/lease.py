"""The leaser: the thread that keeps every running delivery's lease, on its own timer.

A job longer than the queue's visibility timeout stays with its worker only while its lease is renewed
(``JobQueue.extend``) before it runs out. The renewals used to ride the consumer's loop, between receives and
settles; but a receive or a settle can stall for seconds (a slow answer, then botocore's retries with
backoff), and the chaos soak (``benchmarks/soak.py``, 2 s slow answers under fault storms) saw a 4 s lease
run out behind one: a second worker then ran the same job. So renewals have a thread of their own, as
google-cloud-pubsub's subscriber has its ``Leaser`` thread beside the thread that pulls messages; a stalled
receive or settle no longer delays them (``tests/worker/test_lease.py`` holds every receive longer than
half a lease).

The consumer still owns each delivery's end: it calls ``settle`` before its final queue call, which waits
for a renewal in flight and stops any later one, so a renewal never undoes a delete, a release or a retry's
backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from streamup.worker.health import Health
from streamup.worker.queue import JobQueue, QueueUnavailable
from streamup.worker.task import Task

log = logging.getLogger("streamup")

#: How often the leaser looks for leases due (a renewal is due at half a lease: at least 1 s ahead).
TICK_S = 0.2
#: After a failed renewal, the next try comes this soon (not at the next half lease, which may be too late).
RETRY_S = 0.5


class Leaser:
    """Renews the lease of every delivery ``in_hand`` returns once half of ``lease_s`` is gone."""

    def __init__(self, jobs: JobQueue, lease_s: int, in_hand: Callable[[], Sequence[Task]],
                 health: Health) -> None:
        self.jobs, self.lease_s, self.in_hand, self.health = jobs, lease_s, in_hand, health
        self.done = threading.Event()  # set by the consumer when it ends

    def run(self) -> None:
        while not self.done.wait(TICK_S):
            try:
                self.renew(time.monotonic())
            except Exception:  # a bug here must not end renewals for the worker's life: log it, go on
                log.exception("lease renewal failed")

    def renew(self, now: float) -> None:
        """One look: renew each lease that is half gone."""
        for task in self.in_hand():
            delivery = task.delivery
            if delivery.visible_until - now > self.lease_s / 2 or task.renew_after > now:
                continue
            with task.lease_lock:
                if task.settled:
                    continue
                try:
                    self.jobs.extend(delivery, self.lease_s)
                except QueueUnavailable as e:
                    self.health.queue_ok = False
                    log.warning("cannot renew the lease of %s: %s", task.job_id() or delivery.message_id, e)
                    task.renew_after = time.monotonic() + RETRY_S
                    continue
            self.health.queue_ok = True
            delivery.visible_until = now + self.lease_s

    @staticmethod
    def settle(task: Task) -> None:
        """No more renewals for ``task``: its final queue call follows (waits for a renewal in flight)."""
        with task.lease_lock:
            task.settled = True
