"""The plumbing under the pipeline's stages: a stop flag, bounded channels, busy clocks, byte counts.

Kept apart from the stages (``run.py``) so that the stages read as what they do — decode, upscale,
encode — and the rules every stage obeys live in one place: any blocking wait wakes every ``POLL_S`` to see
whether another stage failed or the run was cancelled, and then unwinds quietly (``Halt``); the first real
error wins and is re-raised once all stages have stopped.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

POLL_S = 0.1  # how often a blocked stage looks whether another one failed


class Halt(Exception):
    """Raised inside a stage when another stage failed or the run was cancelled: unwind quietly."""


class StopFlag:
    """One run's shared fate: set by the first failing stage (keeping its error) or by ``cancel``."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self._event = threading.Event()
        self._cancel = cancel
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and self._cancel.is_set()

    def check(self) -> None:
        """Raise ``Halt`` if the run should stop."""
        if self._event.is_set() or self.cancelled:
            raise Halt

    def stop(self) -> None:
        self._event.set()

    def guard(self, stage: Callable[[], None]) -> None:
        """Run ``stage``: ``Halt`` ends it quietly; any other error is kept (the first) and stops the run."""
        try:
            stage()
        except Halt:
            pass
        except BaseException as e:
            with self._lock:
                if self.error is None:
                    self.error = e
            self._event.set()


class Channel:
    """A FIFO between two stages, bounded by item count *and* bytes.

    Items alone do not bound memory: a queued 1080p frame is 6 MB before and 100 MB after a x4 upscale, so
    the same count can mean 50 MB or 1.6 GB. The byte budget caps that; one item is always admitted, however
    large, so a frame bigger than the budget still passes (one at a time). ``fill`` (0..1, the fuller of
    the two measures) is what shows which stage is the bottleneck: a full queue waits on its consumer.
    """

    def __init__(self, name: str, max_items: int, max_bytes: int, stop: StopFlag) -> None:
        self.name = name
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._stop = stop
        self._items: collections.deque[tuple[Any, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, item: Any, size: int = 0) -> None:
        with self._cond:
            while self._items and (
                len(self._items) >= self.max_items or self._bytes + size > self.max_bytes
            ):
                self._stop.check()
                self._cond.wait(POLL_S)
            self._stop.check()
            self._items.append((item, size))
            self._bytes += size
            self._cond.notify_all()

    def get(self) -> Any:
        with self._cond:
            while not self._items:
                self._stop.check()
                self._cond.wait(POLL_S)
            item, size = self._items.popleft()
            self._bytes -= size
            self._cond.notify_all()
            return item

    @property
    def fill(self) -> float:
        with self._cond:
            return max(len(self._items) / self.max_items, self._bytes / self.max_bytes)


class Turns:
    """Workers that run at once but must finish in the order they started (the inference lanes).

    ``with turns.wait(n):`` enters once turns ``0 .. n-1`` have left theirs, so what each turn passes on
    keeps the start order; the wait wakes every ``POLL_S`` to see whether the run stops.
    """

    def __init__(self, stop: StopFlag) -> None:
        self._stop = stop
        self._next = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def wait(self, turn: int) -> Iterator[None]:
        with self._cond:
            while self._next != turn:
                self._stop.check()
                self._cond.wait(POLL_S)
        try:
            yield
        finally:
            with self._cond:
                self._next += 1
                self._cond.notify_all()


class BusyClock:
    """Seconds each stage spent working (not waiting on a queue), and frames each has passed on.

    A stage run by several threads at once (inference lanes) adds up its threads' seconds, so its busy
    seconds can exceed the wall time: busy / wall is how many of its threads were working on average.
    """

    def __init__(self, stages: tuple[str, ...]) -> None:
        self.seconds = dict.fromkeys(stages, 0.0)
        self.frames = dict.fromkeys(stages, 0)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def busy(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[stage] += time.perf_counter() - t0


class Counted:
    """A file object that counts its bytes (everything else passes through), so a run can report its I/O
    without any transport having to. Reading counts every byte consumed; writing counts the extent of the
    output, so a muxer that seeks back to patch a header (Matroska, mp4) does not count those bytes twice."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.bytes += len(data)
        return data

    def write(self, data: bytes) -> int:
        n = self._file.write(data)
        self.bytes = max(self.bytes, self._file.tell())
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)
