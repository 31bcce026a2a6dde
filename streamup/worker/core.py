"""The worker: one consumer thread talks to SQS, ``concurrency`` job threads run ``upscale()``.

Shaped like dramatiq's ``Worker`` (``dramatiq/worker.py``): a consumer thread does all the queue's network
I/O (receive, delete, visibility changes, status events) and hands messages to worker threads through an
in-process queue; worker threads hand their outcome back the same way, so a job thread never waits on SQS and
the queue's state has one owner. Observers (metrics) hear about jobs through ``observe.run_observed`` without
this module importing them, as dramatiq's middleware does.

Differences from dramatiq, each forced by video jobs lasting minutes to hours:

- No prefetch: a receive asks for as many messages as there are idle job threads, so no message sits
  invisible behind a long job while another worker is idle.
- A heartbeat: while a job runs, its message's visibility is pushed out by the queue's visibility timeout
  whenever half of it is left, so a job longer than the timeout is not handed to a second worker.
- At-least-once without harm: outputs are published exclusively (``upscale(exclusive=True)``) and tagged
  with the job id, so a redelivered finished job is recognised before any work (SUCCEEDED is sent again and
  the message deleted), and of two deliveries running at once only one can publish.
- Shutdown drains: on SIGTERM/SIGINT receiving stops, running jobs get ``drain_seconds`` to finish, then
  their ``cancel`` events are set (the pipeline aborts the upload: no object, no open multipart upload) and
  their messages are made visible again at once; the process then exits 0.

Progress reaches SQS without I/O on the inference thread: the ``progress`` callback stores the latest snapshot
and, when another 5 % is done, drops a wake-up into the consumer's inbox; the consumer reads the snapshot and
sends one PROGRESS event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamup import http_server, storage
from streamup.errors import Cancelled, InputError, OutputError, OutputExists
from streamup.observe import CANCELLED, FAILED, RETRIED, JobRef, Observer, run_observed
from streamup.tiers import TIERS, options_for
from streamup.worker import events, jobs
from streamup.worker.failures import Failure, classify
from streamup.worker.sqs import Delivery, Errors, QueueError, QueueSettings, SqsQueue, describe, make_client

if TYPE_CHECKING:
    from streamup.engine.base import FrameUpscaler
    from streamup.options import UpscaleOptions
    from streamup.pipeline import Progress

log = logging.getLogger("streamup")

#: Longest the consumer blocks on its inbox between looks at heartbeats (and at a stop request).
INBOX_WAIT_S = 0.25
#: Long-poll wait while jobs run and a thread is idle: heartbeats and events must not wait out a 20 s poll.
BUSY_POLL_S = 1
#: Transient failures come back after retry_delay x 2^(attempt-1), at most this long.
MAX_BACKOFF_S = 900
#: Seconds a cancelled job may take to unwind (abort its upload) before its message is released anyway.
CANCEL_GRACE_S = 30
#: /healthz fails when the consumer loop has not come round for this long beyond its longest poll (one
#: receive with botocore's retries: 5 attempts x 60 s read timeout, plus backoff, at worst).
LIVENESS_SLACK_S = 330
#: A running job's message is kept invisible for at least this long per heartbeat, even on a queue with a
#: shorter visibility timeout: a consumer thread starved of CPU for a few seconds (a loaded 2-core machine,
#: a job thread holding the GIL) must not let a running message reach another worker. A dead worker's
#: messages come back after at most this long.
MIN_LEASE_S = 30
DELETE, RETRY, RELEASE = "delete", "retry", "release"


@dataclass(frozen=True)
class Settings:
    """Everything the worker is told at start; ``cli.py`` fills it from flags and the environment."""

    queue_url: str
    bucket: str
    status_queue_url: str | None = None
    concurrency: int = 1
    drain_seconds: float = 60.0
    max_jobs: int | None = None
    poll_seconds: int = 20
    retry_delay_s: int = 30
    preload: tuple[str, ...] | None = None  # tiers to load before taking jobs; None: those of this device
    weights_dirs: tuple[str, ...] = ()
    http_host: str = "127.0.0.1"
    http_port: int | None = None


@dataclass
class _Outcome:
    """What the consumer does with a finished delivery: send ``event`` (if any), then ``action`` it."""

    action: str
    event: dict[str, Any] | None = None
    delay_s: int = 0


@dataclass(eq=False)
class _Running:
    """One delivery from receipt to its final SQS call. ``snapshot`` and ``posted`` are written by the job's
    inference thread, everything else by the consumer."""

    delivery: Delivery
    wake: Callable[[tuple[str, _Running, Any]], None]
    job: jobs.Job | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    snapshot: Progress | None = None
    posted: int = 0  # last 5 % step announced to the consumer
    sent: int = 0  # last PROGRESS step sent

    def record(self, snapshot: Progress) -> None:
        """The run's ``progress`` callback: keep the snapshot; wake the consumer when a 5 % step is passed."""
        self.snapshot = snapshot
        step = events.progress_step(snapshot.fraction)
        if step > self.posted:
            self.posted = step
            self.wake(("progress", self, None))


class Worker:
    """Run ``settings.concurrency`` jobs at a time from one queue until stopped (or ``max_jobs`` are done)."""

    def __init__(self, settings: Settings, observers: Sequence[Observer] = (),
                 routes: Mapping[str, http_server.Route] | None = None) -> None:
        if settings.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings = settings
        self.observers = tuple(observers)
        self.routes = dict(routes or {})
        self._client = make_client()
        self._queue = SqsQueue(self._client, settings.queue_url)
        status_url = settings.status_queue_url
        self._status = SqsQueue(self._client, status_url) if status_url else None
        self._queue_settings = QueueSettings(30, None)
        self._inbox: queue.Queue[tuple[str, _Running, Any]] = queue.Queue()
        self._work: queue.Queue[_Running | None] = queue.Queue()
        self._in_flight: dict[str, _Running] = {}  # by SQS message id
        self._lock = threading.Lock()
        self._upscalers: dict[UpscaleOptions, FrameUpscaler] = {}
        self._build_lock = threading.Lock()
        self._stop = threading.Event()  # no more receives
        self._abandon = threading.Event()  # release what is left and go
        self._taken = 0
        self._loaded = False
        self._queue_ok = False
        self._tick = time.monotonic()
        self._consumer: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self.http: http_server.HttpServer | None = None

    # -- lifecycle (main thread) -------------------------------------------------------------------------

    def start(self) -> None:
        """Serve health, check the queues, load the models, then start taking jobs. Raises ``StreamupError``
        (one line) when a queue or a model cannot be used."""
        if self.settings.http_port is not None:
            routes = {"/healthz": self._healthz, "/readyz": self._readyz, **self.routes}
            self.http = http_server.serve(self.settings.http_host, self.settings.http_port, routes)
            log.info("health on http://%s:%d/healthz and /readyz", self.http.host, self.http.port,
                     extra={"fields": {"event": "http", "port": self.http.port}})
        self._queue_settings = self._queue.settings()
        self._queue_ok = True
        if self._status is not None:
            try:  # a role that may only SendMessage there cannot read attributes: say so, do not refuse
                self._status.settings()
            except QueueError as e:
                log.warning("%s; status events may not arrive", e)
        if self._queue_settings.max_receive_count is None:
            log.warning("queue %s has no redrive policy: a job that keeps failing transiently is retried "
                        "forever (give it a dead-letter queue)", self.settings.queue_url)
        for tier in self._preload_tiers():
            self._upscaler(options_for(tier, weights_dirs=self.settings.weights_dirs))
        self._loaded = True
        for i in range(self.settings.concurrency):
            t = threading.Thread(target=self._run_jobs, name=f"streamup-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        self._consumer = threading.Thread(target=self._consume, name="streamup-consumer", daemon=True)
        self._consumer.start()
        log.info("worker ready: queue %s, %d job thread(s), visibility %d s, redrive after %s receives",
                 self.settings.queue_url, self.settings.concurrency, self._queue_settings.visibility_timeout,
                 self._queue_settings.max_receive_count or "no",
                 extra={"fields": {"event": "ready", "queue": self.settings.queue_url,
                                   "concurrency": self.settings.concurrency}})

    def stopping(self) -> bool:
        """True once the worker takes no more jobs (stop requested, or ``max_jobs`` reached and done)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Take no more jobs (idempotent); ``shutdown`` then drains."""
        self._stop.set()

    def shutdown(self, hurry: Callable[[], bool] = lambda: False) -> None:
        """Drain: wait up to ``drain_seconds`` for running jobs (less if ``hurry()`` turns true, e.g. a second
        signal), cancel what is left, let the consumer release its messages, and stop every thread."""
        self._stop.set()
        deadline = time.monotonic() + self.settings.drain_seconds
        running = self._running()
        if running:
            log.info("draining %d running job(s) for up to %.0f s", len(running), self.settings.drain_seconds)
        while self._running() and time.monotonic() < deadline and not hurry():
            time.sleep(0.1)
        left = self._running()
        for r in left:
            r.cancel.set()
        if left:
            log.warning("drain time over: cancelled %s; their messages go back to the queue",
                        ", ".join(r.job.id if r.job else r.delivery.message_id for r in left))
        if self._consumer is not None:
            self._consumer.join(CANCEL_GRACE_S)
            if self._consumer.is_alive():  # a job stuck in I/O: give its message back, leave it behind
                self._abandon.set()
                self._consumer.join()
        for _ in self._threads:
            self._work.put(None)
        for t in self._threads:
            t.join(1.0)
        if self.http is not None:
            self.http.close()
        if self._consumer is not None:  # not when it never started (the error says why)
            log.info("worker stopped after %d job(s)", self._taken, extra={"fields": {"event": "stopped"}})

    # -- health (HTTP thread) ----------------------------------------------------------------------------

    def _healthz(self) -> tuple[int, str, bytes]:
        """Alive: the consumer loop comes round and every job thread is there (200 while still starting)."""
        if self._consumer is None:
            return http_server.text(200, "starting")
        stale = time.monotonic() - self._tick
        limit = self.settings.poll_seconds + LIVENESS_SLACK_S
        if self._consumer.is_alive() and stale > limit:
            return http_server.text(503, f"consumer loop stuck for {stale:.0f} s")
        if not self._stop.is_set() and not all(t.is_alive() for t in self._threads):
            return http_server.text(503, "a job thread died")
        return http_server.text(200, "ok")

    def _readyz(self) -> tuple[int, str, bytes]:
        """Ready: models loaded, the last call to the job queue succeeded, and not draining."""
        if not self._loaded:
            return http_server.text(503, "loading models")
        if not self._queue_ok:
            return http_server.text(503, f"queue unreachable: {self.settings.queue_url}")
        if self._stop.is_set():
            return http_server.text(503, "draining")
        return http_server.text(200, "ready")

    # -- models ------------------------------------------------------------------------------------------

    def _preload_tiers(self) -> tuple[str, ...]:
        if self.settings.preload is not None:
            return self.settings.preload
        from streamup.pipeline import default_device  # torch: loaded once, here, not for `--help`

        device = "gpu" if default_device() == "cuda" else "cpu"
        return tuple(name for name, tier in TIERS.items() if tier.device == device)

    def _upscaler(self, options: UpscaleOptions) -> FrameUpscaler:
        """One upscaler per distinct options, built on first use and shared by every job thread (the engine
        loads each network once per process, so the tiers of one model share its weights too)."""
        with self._build_lock:
            upscaler = self._upscalers.get(options)
            if upscaler is None:
                from streamup.pipeline import build_upscaler  # imports torch: on first use, not for --help

                t0 = time.perf_counter()
                upscaler = build_upscaler(options)
                self._upscalers[options] = upscaler
                fields = {"event": "model", "model": upscaler.name, "device": upscaler.device}
                log.info("loaded %s x%d on %s (%s) in %.1f s", upscaler.name, upscaler.scale, upscaler.device,
                         upscaler.precision, time.perf_counter() - t0, extra={"fields": fields})
        return upscaler

    # -- job threads -------------------------------------------------------------------------------------

    def _run_jobs(self) -> None:
        while (running := self._work.get()) is not None:
            try:
                outcome = self._execute(running)
            except BaseException as e:  # a bug in this module: keep the thread, let the message return
                log.exception("internal error on message %s", running.delivery.message_id)
                outcome = self._failure(running, e)
            self._inbox.put(("done", running, outcome))

    def _execute(self, running: _Running) -> _Outcome:
        delivery = running.delivery
        if self._stop.is_set():
            return _Outcome(RELEASE)
        try:
            job = jobs.parse(delivery.body, self.settings.bucket)
        except jobs.InvalidJob as e:
            return self._failure(running, e, job_id=e.job_id)
        running.job = job
        try:
            options = job.options(self.settings.weights_dirs)
            upscaler = self._upscaler(options)
            existing = _stat_output(job.destination)
        except Exception as e:
            return self._failure(running, e)
        if existing is not None:
            return self._existing(job, existing.metadata)
        if (fanned := self._fan_out(running, job, options, upscaler)) is not None:
            return fanned
        self._inbox.put(("started", running, None))
        ref = JobRef(job.id, job.tier, job.device)
        try:
            result = run_observed(
                ref, self.observers, job.source, job.destination, options,
                progress=running.record, classify=_observed_status, cancel=running.cancel, upscaler=upscaler,
                metadata={"job-id": job.id, "device-used": upscaler.device}, exclusive=True)
        except Cancelled:
            log.info("job %s cancelled; message released", job.id,
                     extra={"fields": {"event": "job", "job": job.id, "status": "cancelled"}})
            return _Outcome(RELEASE)
        except OutputExists as e:  # another delivery published first
            return self._existing(job, e.metadata)
        except Exception as e:
            return self._failure(running, e)
        fields = {"event": "job", "job": job.id, "status": "succeeded", "frames": result.frames,
                  "seconds": round(result.seconds, 3), "device": result.device,
                  "attempt": delivery.receive_count}
        log.info("job %s succeeded: %s, %d frames in %.1f s on %s", job.id, job.destination, result.frames,
                 result.seconds, result.device, extra={"fields": fields})
        return _Outcome(DELETE, events.succeeded(job.id, job.destination, result))

    def _fan_out(self, running: _Running, job: jobs.Job, options: UpscaleOptions,
                 upscaler: FrameUpscaler) -> _Outcome | None:
        """A long job becomes segment jobs on this queue; a segment job runs its segment (``streamup.fanout``,
        docs/fanout.md). None: an ordinary job."""
        from streamup.fanout import hook as fanout

        try:
            handled = fanout.handle(running.delivery.body, job, message_id=running.delivery.message_id,
                                    options=options, upscaler=upscaler, cancel=running.cancel,
                                    observers=self.observers, queue_url=self.settings.queue_url)
        except Cancelled:
            return _Outcome(RELEASE)
        except Exception as e:
            return self._failure(running, e)
        return None if handled is None else _Outcome(DELETE, handled.event)

    def _existing(self, job: jobs.Job, metadata: Mapping[str, str]) -> _Outcome:
        """The output is there already: this job's (a duplicate: report success again) or another's."""
        owner = metadata.get("job-id")
        if owner == job.id:
            log.info("job %s already done (%s exists): no work, SUCCEEDED sent again",
                     job.id, job.destination,
                     extra={"fields": {"event": "job", "job": job.id, "status": "duplicate"}})
            return _Outcome(DELETE, events.already_done(job.id, job.destination, metadata.get("device-used")))
        failure = Failure("OUTPUT_EXISTS", f"{job.destination} already exists and belongs to "
                          f"{'job ' + owner if owner else 'no job'}; not replaced", True)
        return self._fail(job.id, failure, 0)

    def _failure(self, running: _Running, error: BaseException, job_id: str | None = None) -> _Outcome:
        """A permanent failure deletes the message; a transient one sets it to come back after a backoff, and
        on the queue's last allowed receive the event says so (SQS moves the message to the DLQ)."""
        failure = classify(error)
        job_id = job_id or _job_id(running)
        if failure.permanent:
            return self._fail(job_id, failure, _step(running))
        delivery = running.delivery
        limit = self._queue_settings.max_receive_count
        if limit is not None and delivery.receive_count >= limit:
            last = f" (attempt {delivery.receive_count} of {limit}: message goes to the dead-letter queue)"
            failure = Failure(failure.code, failure.message + last, True)
        return self._fail(job_id, failure, _step(running), RETRY, self._backoff(delivery))

    def _fail(self, job_id: str | None, failure: Failure, progress: int, action: str = DELETE,
              delay_s: int = 0) -> _Outcome:
        again = f"; back in the queue in {delay_s} s" if action == RETRY else ""
        log.warning("job %s failed (%s%s): %s", job_id or "(no id)", failure.code, again, failure.message,
                    extra={"fields": {"event": "job", "job": job_id, "status": "failed", "code": failure.code,
                                      "permanent": failure.permanent}})
        return _Outcome(action, events.failed(job_id, failure, progress), delay_s)

    def _backoff(self, delivery: Delivery) -> int:
        return min(MAX_BACKOFF_S, self.settings.retry_delay_s * 2 ** max(0, delivery.receive_count - 1))

    # -- consumer thread: every SQS call -----------------------------------------------------------------

    def _consume(self) -> None:
        while not self._abandon.is_set():
            self._tick = time.monotonic()
            self._heartbeat()
            exhausted = self.settings.max_jobs is not None and self._taken >= self.settings.max_jobs
            if not self._running() and self._inbox.empty() and (self._stop.is_set() or exhausted):
                self._stop.set()
                return
            free = self.settings.concurrency - len(self._running())
            if free > 0 and not self._stop.is_set() and not exhausted:
                if self.settings.max_jobs is not None:
                    free = min(free, self.settings.max_jobs - self._taken)
                self._receive(free)
                self._handle_inbox(block=False)
            else:
                self._handle_inbox(block=True)
        for r in self._running():  # abandoned: stuck jobs' messages go back to the queue
            self._settle(r, _Outcome(RELEASE))

    def _receive(self, count: int) -> None:
        wait = BUSY_POLL_S if self._running() else self.settings.poll_seconds
        wait = min(wait, self.settings.poll_seconds)
        try:
            deliveries = self._queue.receive(count, wait, self._queue_settings.visibility_timeout)
            self._queue_ok = True
        except Errors as e:
            self._queue_ok = False
            log.warning("cannot receive from %s: %s", self.settings.queue_url, describe(e))
            time.sleep(1.0)
            return
        for delivery in deliveries:
            with self._lock:
                mine = self._in_flight.get(delivery.message_id)
            if mine is not None:  # our own running message is back (a late heartbeat): run it once, and use
                mine.delivery.receipt = delivery.receipt  # the newest receipt, the one SQS honours
                mine.delivery.visible_until = delivery.visible_until
                continue
            running = _Running(delivery, self._inbox.put)
            if self._stop.is_set():  # a signal arrived during the long poll
                self._settle(running, _Outcome(RELEASE))
                continue
            with self._lock:
                self._in_flight[delivery.message_id] = running
            self._taken += 1
            self._work.put(running)

    def _handle_inbox(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=INBOX_WAIT_S) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            kind, running, payload = item
            if kind == "started":
                job = running.job
                assert job is not None
                self._send(events.event(job.id, events.RUNNING, 0, attempt=running.delivery.receive_count))
            elif kind == "progress":
                self._send_progress(running)
            else:
                self._settle(running, payload)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _send_progress(self, running: _Running) -> None:
        if running.job is None or running.snapshot is None:
            return
        step = events.progress_step(running.snapshot.fraction)
        if step > running.sent:
            running.sent = step
            self._send(events.event(running.job.id, events.PROGRESS, step))

    def _settle(self, running: _Running, outcome: _Outcome) -> None:
        """The final SQS calls for a delivery. A final event that cannot be sent keeps the message (it comes
        back, is recognised as done or fails again, and the event is sent then)."""
        delivery = running.delivery
        action, delay = outcome.action, outcome.delay_s
        if outcome.event is not None and not self._send(outcome.event) and action == DELETE:
            action, delay = RETRY, self._backoff(delivery)
        try:
            if action == DELETE:
                self._queue.delete(delivery)
            else:
                self._queue.set_visibility(delivery, delay if action == RETRY else 0)
            self._queue_ok = True
        except Errors as e:
            self._queue_ok = False
            log.warning("cannot %s message %s: %s (it comes back when its visibility ends)", action,
                        delivery.message_id, describe(e))
        with self._lock:
            self._in_flight.pop(delivery.message_id, None)

    def _heartbeat(self) -> None:
        """Push out the visibility of every running delivery to a full lease once half of one is gone (the
        first time right after the receive, whatever the queue's own timeout)."""
        lease = max(self._queue_settings.visibility_timeout, MIN_LEASE_S)
        now = time.monotonic()
        for r in self._running():
            if r.delivery.visible_until - now > lease / 2:
                continue
            try:
                self._queue.set_visibility(r.delivery, lease)
                self._queue_ok = True
            except Errors as e:
                self._queue_ok = False
                log.warning("cannot extend message %s: %s", r.delivery.message_id, describe(e))
                r.delivery.visible_until = now + lease  # retried at the next half lease, not every loop

    def _send(self, event: dict[str, Any]) -> bool:
        log.debug("event %s", event, extra={"fields": {"event": "status", "status": event}})
        if self._status is None:
            return True
        try:
            self._status.send(event, group=str(event.get("jobId")))
            return True
        except Errors as e:
            log.warning("cannot send %s event of job %s: %s", event["status"], event["jobId"], describe(e))
            return False

    def _running(self) -> list[_Running]:
        with self._lock:
            return list(self._in_flight.values())


def _stat_output(uri: str) -> storage.ObjectInfo | None:
    """The existing output, if any. Storage calls a failed look an input error; here it is the output's."""
    try:
        return storage.stat(uri)
    except InputError as e:
        raise OutputError(f"cannot check output {uri}: {e}") from e


def _observed_status(error: BaseException) -> str:
    """How observers count a run that raised: a lost publish race was another delivery's success and an
    interrupt is no failure (both ``cancelled``); a transient failure is ``retried``."""
    if isinstance(error, (Cancelled, OutputExists)) or not isinstance(error, Exception):
        return CANCELLED
    return FAILED if classify(error).permanent else RETRIED


def _job_id(running: _Running) -> str | None:
    return running.job.id if running.job else jobs.job_id_of(running.delivery.body)


def _step(running: _Running) -> int:
    return events.progress_step(running.snapshot.fraction) if running.snapshot else 0
