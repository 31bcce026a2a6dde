"""The one place where storage, demux, engine and mux are wired together: ``upscale(source, destination)``.

Three stages run at once so that decoding, inference and encoding overlap::

    decode thread ──(bounded queue)──▶ inference (caller's thread) ──(bounded queue)──▶ encode thread

Audio and subtitle packets ride the same queues as the frames, in the order the demuxer met them, and are
muxed untouched. The queues are bounded, so memory depends on frame size and batch, never on the video's
length. The first error in any stage stops every stage (each blocking queue operation wakes up to check),
all threads are joined before ``upscale`` returns or raises, and the sink is aborted: a failed or cancelled
run leaves no output. Faces (CLI, a queue worker, metrics) wrap this call; they watch it through the
``progress`` callback and stop it through the ``cancel`` event, and never reach inside.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import av

from streamup import __version__
from streamup.errors import Cancelled
from streamup.media import mux
from streamup.media.demux import Decoder, VideoFrame
from streamup.media.mux import Encoder, EncodeSettings, OutputInfo
from streamup.options import UpscaleOptions
from streamup.storage import check_sink, open_sink, open_source

if TYPE_CHECKING:  # importing anything under streamup.engine imports torch (seconds): only when needed
    from streamup.engine.base import FrameUpscaler

# Items (frames or packets) each queue may hold. Small on purpose: a queued 4K frame is 25 MB before and
# 100-400 MB after upscaling; a few in flight are enough to keep every stage busy.
DECODED_QUEUE = 16
UPSCALED_QUEUE = 8
_POLL_S = 0.1  # how often a blocked stage looks whether another one failed

STAGES = ("decode", "upscale", "encode")


@dataclass(frozen=True)
class Progress:
    """A snapshot after each batch. ``frames_total`` is the container's estimate (None when it has none)."""

    frames_done: int
    frames_total: int | None
    elapsed_s: float
    fps: float
    eta_s: float | None
    stage_busy_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)


@dataclass(frozen=True)
class UpscaleResult:
    """What a finished run did; ``stage_busy_s`` shows which stage bounds the speed."""

    source: str
    destination: str
    model: str
    scale: int
    frames: int
    seconds: float
    fps: float
    output: OutputInfo
    stage_busy_s: Mapping[str, float]


ProgressCallback = Callable[[Progress], None]


def upscale(
    source: str,
    destination: str,
    options: UpscaleOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> UpscaleResult:
    """Upscale ``source`` into ``destination`` (local paths or any URI ``streamup.storage`` knows).

    Raises a ``StreamupError`` subclass for anything a user can act on: ``InputError`` (not a usable video),
    ``UsageError``/``ModelError`` (bad options or weights), ``OutputError``, ``Cancelled`` (``cancel`` was
    set). ``progress`` is called from the calling thread after every batch.
    """
    options = options or UpscaleOptions()
    mux.container_for(_extension(destination))  # a bad extension is a usage error before any work
    check_sink(destination)  # a missing bucket or folder fails in seconds, before the engine loads
    start = time.perf_counter()
    with open_source(source) as src:
        decoder = Decoder(src.file, src.name)
        try:
            upscaler = build_upscaler(options)
            metadata = {"source": source, "model": upscaler.name, "scale": str(upscaler.scale),
                        "streamup-version": __version__}
            content_type = mux.CONTENT_TYPES[_extension(destination)]
            with open_sink(destination, content_type=content_type, metadata=metadata) as sink:
                encoder = Encoder(
                    sink.file,
                    sink.extension,
                    seekable=sink.seekable,
                    video=decoder.info,
                    scale=upscaler.scale,
                    passthrough=decoder.passthrough,
                    settings=EncodeSettings(options.codec, options.crf, options.preset),
                )
                try:
                    run = _Run(decoder, upscaler, encoder, progress, cancel)
                    frames = run.execute()
                    encoder.close()
                except BaseException:
                    encoder.abort()
                    raise
        finally:
            decoder.close()
    seconds = time.perf_counter() - start
    return UpscaleResult(
        source=source,
        destination=destination,
        model=upscaler.name,
        scale=upscaler.scale,
        frames=frames,
        seconds=seconds,
        fps=frames / seconds if seconds > 0 else 0.0,
        output=encoder.info,
        stage_busy_s=dict(run.busy),
    )


def build_upscaler(options: UpscaleOptions) -> FrameUpscaler:
    """The engine's upscaler, imported on first use: importing torch takes seconds, and an unusable input
    should be refused before that."""
    from streamup.engine import build_upscaler as build

    return build(options)


def _extension(uri: str) -> str:
    return os.path.splitext(uri.split("?", 1)[0])[1].lower()


class _Halt(Exception):
    """Raised inside a stage when another stage failed or the run was cancelled: unwind quietly."""


_END = object()  # end-of-stream marker passed down the queues


class _Run:
    """The state shared by the three stages of one run: queues, the stop flag and the first error."""

    def __init__(
        self,
        decoder: Decoder,
        upscaler: FrameUpscaler,
        encoder: Encoder,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> None:
        self.decoder, self.upscaler, self.encoder = decoder, upscaler, encoder
        self.progress, self.cancel = progress, cancel
        self.decoded: queue.Queue[Any] = queue.Queue(DECODED_QUEUE)
        self.upscaled: queue.Queue[Any] = queue.Queue(UPSCALED_QUEUE)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.busy = dict.fromkeys(STAGES, 0.0)
        self.frames = 0

    def execute(self) -> int:
        """Run all stages to the end; returns the number of frames written or raises the first error."""
        threads = [
            threading.Thread(target=self._guard, args=(self._decode,), name="streamup-decode", daemon=True),
            threading.Thread(target=self._guard, args=(self._encode,), name="streamup-encode", daemon=True),
        ]
        for t in threads:
            t.start()
        self._guard(self._infer)
        try:
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C while waiting for the encoder to drain: stop it, then go
            self.stop.set()
            for t in threads:
                t.join()
            raise
        if self.error is not None:
            raise self.error
        if self._cancelled():
            raise Cancelled("cancelled; no output written")
        return self.frames

    # -- plumbing ---------------------------------------------------------------------------------------

    def _guard(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except _Halt:
            pass
        except BaseException as e:
            with self._lock:
                if self.error is None:
                    self.error = e
            self.stop.set()

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _check(self) -> None:
        if self.stop.is_set() or self._cancelled():
            raise _Halt

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            self._check()
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue[Any]) -> Any:
        while True:
            self._check()
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _timed(self, stage: str, items: Iterator[Any]) -> Iterator[Any]:
        """Yield from ``items``, adding the time spent producing each one to ``stage``'s busy time."""
        while True:
            t0 = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                self.busy[stage] += time.perf_counter() - t0
            yield item

    # -- stages -----------------------------------------------------------------------------------------

    def _decode(self) -> None:
        for item in self._timed("decode", iter(self.decoder)):
            self._put(self.decoded, item)
        self._put(self.decoded, _END)

    def _infer(self) -> None:
        """Collect a batch of frames (with the packets between them), upscale it, pass it on in order."""
        batch_frames = max(1, self.upscaler.batch_frames)
        start = time.perf_counter()
        pending: list[VideoFrame | av.Packet] = []
        count = 0
        while True:
            item = self._get(self.decoded)
            if item is not _END:
                pending.append(item)
                count += isinstance(item, VideoFrame)
                if count < batch_frames:
                    continue
            if count:
                self._upscale_batch(pending)
            else:
                for packet in pending:
                    self._put(self.upscaled, packet)
            pending, count = [], 0
            self._report(start)
            if item is _END:
                self._put(self.upscaled, _END)
                return

    def _upscale_batch(self, items: list[VideoFrame | av.Packet]) -> None:
        frames = [i for i in items if isinstance(i, VideoFrame)]
        t0 = time.perf_counter()
        images = iter(self.upscaler.upscale([f.image for f in frames]))
        self.busy["upscale"] += time.perf_counter() - t0
        for item in items:
            self._put(self.upscaled, (next(images), item.pts) if isinstance(item, VideoFrame) else item)
        self.frames += len(frames)

    def _encode(self) -> None:
        while (item := self._get(self.upscaled)) is not _END:
            t0 = time.perf_counter()
            if isinstance(item, tuple):
                self.encoder.write_frame(*item)
            else:
                self.encoder.write_packet(item)
            self.busy["encode"] += time.perf_counter() - t0

    def _report(self, start: float) -> None:
        if self.progress is None:
            return
        elapsed = time.perf_counter() - start
        total = self.decoder.info.frames_estimate
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        eta = max(0.0, (total - self.frames) / fps) if total and fps > 0 else None
        self.progress(Progress(self.frames, total, elapsed, fps, eta, dict(self.busy)))
