"""The doors other rooms plug into the worker through, composed by whoever builds the command (``cli.py``).

The worker never imports what fills them (the fan-out, the admission rules, scale-in protection), just as it
never imports its metrics observers:

- a ``JobHook`` may take a parsed job off the runner's hands (the fan-out turns a long job into segment
  jobs, or runs one segment). It answers ``Handled`` (the message is deleted after ``sends`` are sent and
  ``event`` reported) or None (the runner runs the job itself). It is asked after the job is parsed,
  admitted and found not done yet, and before the job's model is built: ``JobContext.upscaler()`` builds it
  only if the hook needs it.
- ``Admit`` is asked twice: ``check`` right after parsing, before anything is looked at or fetched (the
  job's own words: its hosts, its buckets), and ``weigh`` once the job is known not to be done yet and
  before its model is built (what its source is: a header read against limits). Either raises an
  ``InvalidJob`` (subclass) to refuse the job: one FAILED event, ``permanent: true``, the message deleted.
- a ``BusyHook`` hears the number of deliveries in hand whenever it changes (0 → n, n → 0 and between),
  on the consumer thread, before a new delivery's job starts: e.g. to protect the machine from scale-in
  while it works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from streamup.observe import Observer
from streamup.worker.jobs import Job
from streamup.worker.queue import Message

if TYPE_CHECKING:
    from streamup.config import Config
    from streamup.engine.base import FrameUpscaler
    from streamup.options import UpscaleOptions


class Admit(Protocol):
    def check(self, job: Job) -> None:
        """Refuse ``job`` on its own words; must fetch nothing."""

    def weigh(self, job: Job) -> None:
        """Refuse ``job`` on what its source is (may read the source's header); a duplicate of a finished
        job is never weighed."""


BusyHook = Callable[[int], None]


@dataclass(frozen=True)
class Handled:
    """A hook took the message: ``sends`` go to the job queue, then ``event`` (if any) to the status queue,
    then the message is deleted. A send that fails keeps the message for a retry (the hook runs again)."""

    event: dict[str, Any] | None
    sends: tuple[Message, ...] = ()


@dataclass(frozen=True)
class JobContext:
    """What a hook may use of the delivery it is handed: never the queue."""

    message_id: str  # the message's identity across releases (``Delivery.identity``)
    options: UpscaleOptions
    upscaler: Callable[[], FrameUpscaler]  # the job's model, built on first call (shared, cached)
    cancel: threading.Event
    observers: Sequence[Observer]
    config: Config  # the worker's environment, read once (e.g. the fan-out's length rules)


class JobHook(Protocol):
    def __call__(self, job: Job, context: JobContext) -> Handled | None:
        """Handle ``job`` (``job.message`` is its parsed body) or return None. Raise ``Cancelled`` when
        ``context.cancel`` interrupts it (the message is released), any other error to fail the delivery
        (``failures.classify`` sorts it)."""
