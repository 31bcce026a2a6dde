"""The consumer: the one thread that does all of the worker's queue I/O.

Shaped like dramatiq's ``_ConsumerThread`` (``dramatiq/worker.py``): it receives deliveries and hands them to
the job threads through an in-process queue; the job threads hand their outcomes back through its inbox, and
it makes every queue call (receive, heartbeat, send, release, delete, status events), so a job thread never
waits on the network and each delivery's queue state has one owner.

Differences from dramatiq, each forced by video jobs lasting minutes to hours:

- No prefetch: a receive asks for as many messages as there are idle job threads, so no message sits
  invisible behind a long job while another worker is idle.
- A heartbeat: while a job runs, its delivery's lease is renewed whenever half of it is left, so a job
  longer than the queue's visibility timeout is not handed to a second worker. The renewals run on a
  thread of their own (``lease.py``: a receive stalled by the network must not delay them); the consumer
  tells it when a delivery's final call comes, and makes every other queue call.
- Progress reaches the status queue without I/O on the inference threads: ``Task.record`` keeps the latest
  snapshot and wakes the consumer at each 5 % step; the consumer sends one PROGRESS event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamup.worker import events
from streamup.worker.health import Health
from streamup.worker.hooks import BusyHook
from streamup.worker.lease import Leaser
from streamup.worker.policy import Policy
from streamup.worker.queue import DELETE, RELEASE, RETRY, JobQueue, Message, Outcome, QueueUnavailable, Sender
from streamup.worker.task import DONE, PROGRESS, STARTED, Task

log = logging.getLogger("streamup")

#: Longest the consumer blocks on its inbox between looks at heartbeats (and at a stop request).
INBOX_WAIT_S = 0.25
#: Long-poll wait while jobs run and a thread is idle: heartbeats and events must not wait out a 20 s poll.
BUSY_POLL_S = 1


@dataclass(frozen=True)
class Limits:
    """How much the consumer takes: ``concurrency`` deliveries at once, ``max_jobs`` in all (None: no end),
    long polls of ``poll_seconds`` when idle, and leases of at least ``min_lease_s``."""

    concurrency: int
    max_jobs: int | None
    poll_seconds: int
    min_lease_s: int


class Consumer:
    """Feeds ``limits.concurrency`` job threads from ``jobs`` and settles their outcomes."""

    def __init__(self, jobs: JobQueue, status: Sender | None, limits: Limits, lease_s: int, policy: Policy,
                 health: Health, stop: threading.Event, busy_hooks: Sequence[BusyHook] = ()) -> None:
        self.jobs, self.status, self.limits, self.policy, self.health = jobs, status, limits, policy, health
        self.lease_s = max(lease_s, limits.min_lease_s)
        self.busy_hooks = tuple(busy_hooks)
        self.taken = 0
        self.stop = stop  # no more receives (the consumer sets it too, once max_jobs are done)
        self.abandon = threading.Event()  # release what is left and go
        self._inbox: queue.Queue[tuple[str, Task, Any]] = queue.Queue()
        self._work: queue.Queue[Task | None] = queue.Queue()
        self._in_hand: dict[str, Task] = {}  # by message id
        self._lock = threading.Lock()
        self.leaser = Leaser(jobs, self.lease_s, self.in_hand, health)  # its thread is started beside ours

    # -- for the job threads and the main thread --------------------------------------------------------

    def next_task(self) -> Task | None:
        """A job thread's next delivery (None: the worker is shutting down)."""
        return self._work.get()

    def finish(self, task: Task, outcome: Outcome) -> None:
        """A job thread is done with ``task``."""
        self._inbox.put((DONE, task, outcome))

    def close(self, threads: int) -> None:
        """Let ``threads`` job threads end."""
        for _ in range(threads):
            self._work.put(None)

    def in_hand(self) -> list[Task]:
        with self._lock:
            return list(self._in_hand.values())

    # -- the consumer thread ----------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._loop()
        finally:
            self.leaser.done.set()

    def _loop(self) -> None:
        while not self.abandon.is_set():
            self.health.beat()
            exhausted = self.limits.max_jobs is not None and self.taken >= self.limits.max_jobs
            if not self.in_hand() and self._inbox.empty() and (self.stop.is_set() or exhausted):
                self.stop.set()
                return
            free = self.limits.concurrency - len(self.in_hand())
            if free > 0 and not self.stop.is_set() and not exhausted:
                if self.limits.max_jobs is not None:
                    free = min(free, self.limits.max_jobs - self.taken)
                self._receive(free)
                self._handle_inbox(block=False)
            else:
                self._handle_inbox(block=True)
        for task in self.in_hand():  # abandoned: stuck jobs' messages go back to the queue
            self._settle(task, Outcome(RELEASE))

    def _receive(self, count: int) -> None:
        wait = min(BUSY_POLL_S if self.in_hand() else self.limits.poll_seconds, self.limits.poll_seconds)
        deliveries = self._call(self.jobs.receive, count, wait, self.lease_s)
        if deliveries is None:
            time.sleep(1.0)
            return
        for delivery in deliveries:
            with self._lock:
                mine = self._in_hand.get(delivery.message_id)
            if mine is not None:  # our own running message is back (a late heartbeat): run it once, and use
                mine.delivery.handle = delivery.handle  # the newest handle, the one the queue honours
                mine.delivery.visible_until = delivery.visible_until
                continue
            task = Task(delivery, self._inbox.put)
            if self.stop.is_set():  # a signal arrived during the long poll
                self._settle(task, Outcome(RELEASE))
                continue
            self.taken += 1
            self._hold(task)
            self._work.put(task)

    def _handle_inbox(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=INBOX_WAIT_S) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            kind, task, outcome = item
            if kind == STARTED:
                assert task.job is not None
                self._send(events.event(task.job.id, events.RUNNING, 0, attempt=task.delivery.receive_count))
            elif kind == PROGRESS:
                self._send_progress(task)
            else:
                self._settle(task, outcome)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _send_progress(self, task: Task) -> None:
        if task.job is None:
            return
        step = task.step()
        if step > task.sent:
            task.sent = step
            self._send(events.event(task.job.id, events.PROGRESS, step))

    def _settle(self, task: Task, outcome: Outcome) -> None:
        """The final queue calls for a delivery: its messages to send, its event, then delete, retry or
        release. A message or final event that cannot be sent keeps the delivery (it comes back after a
        backoff, is recognised as done or runs again, and they are sent then)."""
        delivery = task.delivery
        self.leaser.settle(task)
        action, delay = outcome.action, outcome.delay_s
        sent = all(self._call(self.jobs.send, m) is not None for m in outcome.sends)
        reported = sent and (outcome.event is None or self._send(outcome.event))
        if not reported and action == DELETE:
            action, delay = RETRY, self.policy.backoff(delivery)
        if action == DELETE:
            self._call(self.jobs.delete, delivery)
        elif action == RETRY:
            self._call(self.jobs.extend, delivery, delay)
        elif self._call(self.jobs.release, delivery) is not None:
            log.info("job %s released (%d time(s) now): back in the queue, not counted as an attempt",
                     task.job_id() or delivery.message_id, delivery.releases + 1,
                     extra={"fields": {"event": "release", "job": task.job_id(),
                                       "releases": delivery.releases + 1}})
        self._drop(task)

    def _send(self, event: dict[str, Any]) -> bool:
        log.debug("event %s", event, extra={"fields": {"event": "status", "status": event}})
        if self.status is None:
            return True
        try:
            self.status.send(Message(event, str(event.get("jobId"))))
            return True
        except QueueUnavailable as e:
            log.warning("cannot send %s event of job %s: %s", event["status"], event["jobId"], e)
            return False

    def _call(self, method: Any, *args: Any) -> Any:
        """``method(*args)`` on the job queue: its answer (True for none), or None when it failed (logged;
        what was not done is done by the queue's own timeouts)."""
        try:
            answer = method(*args)
        except QueueUnavailable as e:
            self.health.queue_ok = False
            log.warning("%s", e)
            return None
        self.health.queue_ok = True
        return True if answer is None else answer

    def _hold(self, task: Task) -> None:
        with self._lock:
            self._in_hand[task.delivery.message_id] = task
        self._busy()

    def _drop(self, task: Task) -> None:
        with self._lock:
            held = self._in_hand.pop(task.delivery.message_id, None)
        if held is not None:
            self._busy()

    def _busy(self) -> None:
        running = len(self.in_hand())
        for hook in self.busy_hooks:
            try:
                hook(running)
            except Exception:  # e.g. scale-in protection unreachable: the job still runs
                log.exception("busy hook %r failed at %d running", hook, running)
