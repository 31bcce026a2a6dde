"""One delivery in hand, from its receipt to its final queue call: what the consumer and a runner share.

The consumer creates it and makes its queue calls (the leaser, ``lease.py``, only renews its lease until the
consumer ``settle``s it); the runner on a job thread fills in ``job``, says when work starts and records
progress. ``snapshot`` and ``posted`` are written on the job's inference
threads, ``sent`` only by the consumer; each wake-up is one item on the consumer's inbox, so the inference
threads never wait on the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamup.worker import events
from streamup.worker.jobs import Job, job_id_of
from streamup.worker.queue import Delivery

if TYPE_CHECKING:
    from streamup.pipeline import Progress

STARTED, PROGRESS, DONE = "started", "progress", "done"
#: An inbox item: (what happened, to which task, the outcome when DONE).
Wake = Callable[[tuple[str, "Task", Any]], None]


@dataclass(eq=False)
class Task:
    """A delivery being run. ``cancel`` is set by the worker's drain; the run then stops and is released."""

    delivery: Delivery
    wake: Wake
    job: Job | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    snapshot: Progress | None = None
    posted: int = 0  # last 5 % step announced to the consumer
    sent: int = 0  # last PROGRESS step sent
    lease_lock: threading.Lock = field(default_factory=threading.Lock)  # a renewal, or the end of renewals
    settled: bool = False  # the consumer is making its final queue call: no more renewals
    renew_after: float = 0.0  # monotonic: a failed renewal is tried again from then

    def started(self) -> None:
        """Work begins (the consumer sends RUNNING)."""
        self.wake((STARTED, self, None))

    def record(self, snapshot: Progress) -> None:
        """The run's ``progress`` callback: keep the snapshot; wake the consumer when a 5 % step is passed."""
        self.snapshot = snapshot
        step = events.progress_step(snapshot.fraction)
        if step > self.posted:
            self.posted = step
            self.wake((PROGRESS, self, None))

    def step(self) -> int:
        """The 5 % step reached so far (0 before any frame)."""
        return events.progress_step(self.snapshot.fraction) if self.snapshot else 0

    def job_id(self) -> str | None:
        """The job's id, or the one its message names when it did not parse (for a FAILED event)."""
        return self.job.id if self.job else job_id_of(self.delivery.body)
