"""The worker's lifecycle: start the rooms in order, take jobs until stopped, then drain.

One consumer thread (``consumer.py``) does all queue I/O but lease renewals, which a leaser thread
(``lease.py``) makes on its own timer; ``concurrency`` job threads each run a ``Runner``
(``runner.py``) that turns one delivery into one outcome; models (``models.py``), health (``health.py``)
and failure decisions (``policy.py``) are rooms of their own. The queue is any ``JobQueue`` (``queue.py``):
this module never learns which. Observers (metrics), job hooks (the fan-out), admission rules and busy
hooks come from whoever composes the command (``streamup.cli``), as dramatiq's middleware does.

Shutdown drains: on SIGTERM/SIGINT receiving stops, running jobs get ``drain_seconds`` to finish, then their
``cancel`` events are set (the pipeline aborts the upload: no object, no open multipart upload) and their
messages are released (back at once, not counted as an attempt); the process then exits 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from streamup import config, http_server
from streamup.config import Config
from streamup.observe import Observer
from streamup.worker.consumer import Consumer, Limits
from streamup.worker.health import Health
from streamup.worker.hooks import Admit, BusyHook, JobHook
from streamup.worker.models import Models
from streamup.worker.policy import Policy
from streamup.worker.queue import JobQueue, Sender
from streamup.worker.runner import Runner

log = logging.getLogger("streamup")

#: Seconds a cancelled job may take to unwind (abort its upload) before its message is released anyway.
CANCEL_GRACE_S = 30


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
    min_lease_s: int = config.MIN_LEASE_SECONDS_DEFAULT
    preload: tuple[str, ...] | None = None  # tiers to load before taking jobs; None: those of this device
    weights_dirs: tuple[str, ...] = ()
    http_host: str = "127.0.0.1"
    http_port: int | None = None
    #: The environment, read once by the face (tier overrides, weights folders, fan-out rules).
    config: Config = field(default_factory=Config)


@dataclass(frozen=True)
class Plugins:
    """What the composing command plugs in (``hooks.py`` says what each is for)."""

    observers: Sequence[Observer] = ()
    routes: Mapping[str, http_server.Route] | None = None
    job_hooks: Sequence[JobHook] = ()
    admit: Admit | None = None
    busy_hooks: Sequence[BusyHook] = ()


class Worker:
    """Run ``settings.concurrency`` jobs at a time from ``jobs`` until stopped (or ``max_jobs`` are done);
    status events go to ``status`` (None: none are sent)."""

    def __init__(self, settings: Settings, jobs: JobQueue, status: Sender | None = None,
                 plugins: Plugins = Plugins()) -> None:
        if settings.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings, self.jobs, self.status, self.plugins = settings, jobs, status, plugins
        self._stop = threading.Event()  # no more receives: set here or by the consumer after max_jobs
        self.health = Health(jobs.name, settings.poll_seconds, self.stopping)
        self.models = Models(settings.config, settings.weights_dirs)
        self.consumer: Consumer | None = None
        self._consumer_thread: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self.http: http_server.HttpServer | None = None

    def start(self) -> None:
        """Serve health, check the queues, load the models, then start taking jobs. Raises ``StreamupError``
        (one line) when a queue or a model cannot be used."""
        s = self.settings
        if s.http_port is not None:
            self.http = http_server.serve(s.http_host, s.http_port, {**self.health.routes(),
                                                                     **(self.plugins.routes or {})})
            log.info("health on http://%s:%d/healthz and /readyz", self.http.host, self.http.port,
                     extra={"fields": {"event": "http", "port": self.http.port}})
        queue = self.jobs.settings()
        self.health.queue_ok = True
        if queue.max_receive_count is None:
            log.warning("queue %s has no redrive policy: a job that keeps failing transiently is retried "
                        "forever (give it a dead-letter queue)", self.jobs.name)
        self.models.preload(s.preload)
        self.health.loaded = True
        policy = Policy(s.retry_delay_s, queue.max_receive_count)
        runner = Runner(s.bucket, s.config, self.models, policy, self.stopping,
                        observers=self.plugins.observers, hooks=self.plugins.job_hooks,
                        admit=self.plugins.admit)
        limits = Limits(s.concurrency, s.max_jobs, s.poll_seconds, s.min_lease_s)
        consumer = self.consumer = Consumer(self.jobs, self.status, limits, queue.visibility_timeout, policy,
                                            self.health, self._stop, self.plugins.busy_hooks)
        for i in range(s.concurrency):
            t = threading.Thread(target=self._run_jobs, args=(consumer, runner), name=f"streamup-job-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        self._consumer_thread = threading.Thread(target=consumer.run, name="streamup-consumer", daemon=True)
        self.health.watch(self._consumer_thread, self._threads)
        threading.Thread(target=consumer.leaser.run, name="streamup-leaser", daemon=True).start()
        self._consumer_thread.start()
        log.info("worker ready: queue %s, %d job thread(s), lease %d s, redrive after %s receives",
                 self.jobs.name, s.concurrency, consumer.lease_s, queue.max_receive_count or "no",
                 extra={"fields": {"event": "ready", "queue": self.jobs.name, "concurrency": s.concurrency,
                                   "lease": consumer.lease_s}})

    @staticmethod
    def _run_jobs(consumer: Consumer, runner: Runner) -> None:
        while (task := consumer.next_task()) is not None:
            consumer.finish(task, runner.run(task))

    def stopping(self) -> bool:
        """True once the worker takes no more jobs (stop requested, or ``max_jobs`` reached and done)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Take no more jobs (idempotent); ``shutdown`` then drains."""
        self._stop.set()

    def shutdown(self, hurry: Callable[[], bool] = lambda: False) -> None:
        """Drain: wait up to ``drain_seconds`` for running jobs (less if ``hurry()`` turns true, e.g. a second
        signal), cancel what is left, let the consumer release its messages, and stop every thread."""
        self.stop()
        consumer, thread = self.consumer, self._consumer_thread
        if consumer is not None and thread is not None:
            self._drain(consumer, hurry)
            thread.join(CANCEL_GRACE_S)
            if thread.is_alive():  # a job stuck in I/O: give its message back, leave it behind
                consumer.abandon.set()
                thread.join()
            consumer.close(len(self._threads))
            for t in self._threads:
                t.join(1.0)
        if self.http is not None:
            self.http.close()
        if consumer is not None:  # not when it never started (the error says why)
            log.info("worker stopped after %d job(s)", consumer.taken, extra={"fields": {"event": "stopped"}})

    def _drain(self, consumer: Consumer, hurry: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.settings.drain_seconds
        if running := consumer.in_hand():
            log.info("draining %d running job(s) for up to %.0f s", len(running), self.settings.drain_seconds)
        while consumer.in_hand() and time.monotonic() < deadline and not hurry():
            time.sleep(0.1)
        left = consumer.in_hand()
        for task in left:
            task.cancel.set()
        if left:
            log.warning("drain time over: cancelled %s; their messages go back to the queue",
                        ", ".join(t.job.id if t.job else t.delivery.message_id for t in left))
