"""What the worker needs of a job queue, in its own words: the bottom of ``streamup.worker``.

Shaped like dramatiq's ``Broker``/``Consumer`` pair (``dramatiq/broker.py``): the worker's logic asks a
``JobQueue`` for deliveries and tells it what became of each; how that is done (SQS receipts, visibility
timeouts, redrive policies) stays inside the implementation (``worker/sqs.py`` today; a Redis list, a Kafka
topic or a local spool would be another file). Only the worker's consumer thread calls a queue.

A delivery ends in exactly one of three ways, said by an ``Outcome``:

- ``DELETE``: done (succeeded, failed for good, or handed on as other messages): it never comes back.
- ``RETRY``: failed for now; it comes back after ``delay_s`` and the attempt counts toward the queue's
  dead-letter limit.
- ``RELEASE``: not run to the end through no fault of its own (the worker drains or stops): it comes back at
  once and the attempt does **not** count, so a job interrupted any number of times is never dead-lettered
  for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streamup.errors import StreamupError

DELETE, RETRY, RELEASE = "delete", "retry", "release"


class QueueError(StreamupError):
    """A queue cannot be used at start (wrong address, no permission, endpoint unreachable)."""


class QueueUnavailable(Exception):
    """One call to a queue failed (network, throttling, a refused request); the message says why in a few
    words. The consumer logs it and carries on: what was not done is done by the queue's own timeouts."""


@dataclass
class Delivery:
    """One received message. ``receive_count`` is the queue's count toward its dead-letter limit (releases
    do not add to it); ``releases`` how often it was released before; ``visible_until`` (monotonic) when the
    queue would hand it to someone else; ``handle`` is the implementation's own token for it. ``origin`` is
    the id of the message a released copy stands for ("" for an original): a released message keeps its
    identity (``identity``), so whatever it claimed before the release (the fan-out's stitch) is still its."""

    message_id: str
    body: str
    receive_count: int
    visible_until: float
    handle: Any = None
    releases: int = 0
    origin: str = ""

    @property
    def identity(self) -> str:
        """The message this delivery is, across releases: the original's id."""
        return self.origin or self.message_id


@dataclass(frozen=True)
class Message:
    """A message to send: a JSON object, and the group that keeps related messages in order (FIFO)."""

    body: Mapping[str, Any]
    group: str


@dataclass(frozen=True)
class Outcome:
    """What the consumer does with a finished delivery: send ``sends`` to the job queue, send ``event`` (if
    any) to the status queue, then ``action`` it (``RETRY`` after ``delay_s``)."""

    action: str
    event: dict[str, Any] | None = None
    delay_s: int = 0
    sends: tuple[Message, ...] = ()


@dataclass(frozen=True)
class QueueSettings:
    """What the worker must know of its queue: the lease a receive gets (seconds) and after how many counted
    receives a message is dead-lettered (None: never)."""

    visibility_timeout: int
    max_receive_count: int | None


class Sender(Protocol):
    """Where messages go (the status queue needs no more)."""

    def send(self, message: Message) -> None:
        """Send one message; raises ``QueueUnavailable``."""


class JobQueue(Sender, Protocol):
    """A queue of jobs. Every call but ``settings`` raises ``QueueUnavailable`` when it fails."""

    name: str

    def settings(self) -> QueueSettings:
        """The queue's lease and dead-letter limit; ``QueueError`` if the queue cannot be used."""

    def receive(self, count: int, wait_s: int, lease_s: int) -> list[Delivery]:
        """Up to ``count`` deliveries, waiting at most ``wait_s`` for the first, each kept from everyone
        else for ``lease_s``."""

    def extend(self, delivery: Delivery, seconds: int) -> None:
        """Keep ``delivery`` from everyone else for ``seconds`` from now (a heartbeat, or a retry's
        backoff: it comes back when they are over)."""

    def release(self, delivery: Delivery) -> None:
        """Hand ``delivery`` back at once without counting the attempt toward the dead-letter limit."""

    def delete(self, delivery: Delivery) -> None:
        """Done with ``delivery``: it never comes back."""
