"""The worker's ``/healthz`` (alive) and ``/readyz`` (ready for jobs), read from what the other rooms say.

Liveness is the consumer loop coming round (it calls ``beat`` every pass) and every job thread being there;
readiness is models loaded, the last call to the job queue succeeded, and not draining. Kubernetes restarts
a pod that is not alive and sends no traffic to one not ready; an idle worker that cannot reach its queue is
alive but not ready, so it is not restarted for an outage it cannot fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from streamup import http_server

#: /healthz fails when the consumer loop has not come round for this long beyond its longest poll (one
#: receive with botocore's retries: 5 attempts x 60 s read timeout, plus backoff, at worst).
LIVENESS_SLACK_S = 330


class Health:
    """Health of one worker. ``loaded`` is set once the models are in; ``queue_ok`` after each queue call."""

    def __init__(self, queue_name: str, poll_seconds: int, stopping: Callable[[], bool]) -> None:
        self.queue_name = queue_name
        self.limit_s = poll_seconds + LIVENESS_SLACK_S
        self.stopping = stopping
        self.loaded = False
        self.queue_ok = False
        self._tick = time.monotonic()
        self._consumer: threading.Thread | None = None
        self._threads: Sequence[threading.Thread] = ()

    def watch(self, consumer: threading.Thread, threads: Sequence[threading.Thread]) -> None:
        """The threads whose life ``/healthz`` reports (none before the worker starts taking jobs)."""
        self._consumer, self._threads = consumer, threads

    def beat(self) -> None:
        """The consumer loop came round."""
        self._tick = time.monotonic()

    def routes(self) -> dict[str, http_server.Route]:
        return {"/healthz": self.healthz, "/readyz": self.readyz}

    def healthz(self) -> tuple[int, str, bytes]:
        """Alive: the consumer loop comes round and every job thread is there (200 while still starting)."""
        if self._consumer is None:
            return http_server.text(200, "starting")
        stale = time.monotonic() - self._tick
        if self._consumer.is_alive() and stale > self.limit_s:
            return http_server.text(503, f"consumer loop stuck for {stale:.0f} s")
        if not self.stopping() and not all(t.is_alive() for t in self._threads):
            return http_server.text(503, "a job thread died")
        return http_server.text(200, "ok")

    def readyz(self) -> tuple[int, str, bytes]:
        """Ready: models loaded, the last call to the job queue succeeded, and not draining."""
        if not self.loaded:
            return http_server.text(503, "loading models")
        if not self.queue_ok:
            return http_server.text(503, f"queue unreachable: {self.queue_name}")
        if self.stopping():
            return http_server.text(503, "draining")
        return http_server.text(200, "ready")
