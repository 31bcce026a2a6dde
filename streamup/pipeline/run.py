"""The one place where storage, demux, engine and mux are wired together: ``upscale(source, destination)``.

Three stages run at once so that decoding, inference and encoding overlap::

    decode thread ──(bounded queue)──▶ inference lanes ──(bounded queue)──▶ encode thread

Inference runs in ``upscaler.lanes`` threads (the caller's is the first): on a CPU two single-threaded lanes
beat one two-threaded call (no OpenMP barrier per layer for a preempted thread to stall; measurements in
``engine.tiling.CPU_LANES``). Lanes take batches in turn and pass them on in the same order (``flow.Turns``).

Audio and subtitle packets ride the same queues as the frames, in the order the demuxer met them, and are
muxed untouched. The queues are bounded, so memory depends on frame size and batch, never on the video's
length. The first error in any stage stops every stage (each blocking queue operation wakes up to check),
all threads are joined before ``upscale`` returns or raises, and the sink is aborted: a failed or cancelled
run leaves no output. Faces (CLI, a queue worker, metrics) wrap this call; they watch it through the
``progress`` callback and stop it through the ``cancel`` event, and never reach inside. The plumbing under the
stages (stop flag, byte-bounded channels, busy clocks, byte counts) is ``streamup.pipeline.flow``; the source
and sink are opened as every pipeline-level path opens them (``streamup.pipeline.ends``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av

from streamup.config import Config
from streamup.engine.alpha import AlphaUpscaler
from streamup.engine.base import TiledUpscaler
from streamup.errors import Cancelled
from streamup.media import mux
from streamup.media.demux import Decoder, VideoFrame
from streamup.media.mux import Encoder, EncodeSettings, OutputInfo
from streamup.options import UpscaleOptions
from streamup.pipeline.ends import decoding, encoding
from streamup.pipeline.flow import BusyClock, Channel, StopFlag, Turns
from streamup.pipeline.reuse import Choice, Reuse
from streamup.storage import check_sink, extension
from streamup.version import __version__

if TYPE_CHECKING:  # importing anything under streamup.engine imports torch (seconds): only when needed
    from streamup.engine.base import FrameUpscaler

# Each queue is bounded twice: by items (a few in flight keep every stage busy) and by bytes (a queued 4K
# frame is 25 MB before and 100-400 MB after upscaling, so a count alone would let memory grow with the
# output size). One item always passes, however large.
DECODED_QUEUE = 16
UPSCALED_QUEUE = 8
DECODED_BYTES = 96 * 1024 * 1024
UPSCALED_BYTES = 192 * 1024 * 1024

STAGES = ("decode", "upscale", "encode")
QUEUES = ("decoded", "upscaled")


@dataclass(frozen=True)
class Progress:
    """A snapshot after each batch. ``frames_total`` is the container's estimate (None when it has none).

    ``stage_busy_s``/``stage_frames`` are cumulative per stage; ``queue_fill`` (0..1 per queue) shows the
    bottleneck (a full queue waits on the stage after it); ``video_seconds_done`` is how much of the source's
    timeline is upscaled; bytes and OOM retries are this run's so far. ``frames_reused`` never reached the
    network (unchanged everywhere), ``tiles_reused``/``tiles_computed`` count the engine's tiles of the
    frames done (``streamup.pipeline.reuse``; both 0 under ``reuse="off"`` or an engine without tiles).
    """

    frames_done: int
    frames_total: int | None
    elapsed_s: float
    fps: float
    eta_s: float | None
    stage_busy_s: Mapping[str, float] = field(default_factory=dict)
    stage_frames: Mapping[str, int] = field(default_factory=dict)
    queue_fill: Mapping[str, float] = field(default_factory=dict)
    bytes_read: int = 0
    bytes_written: int = 0
    oom_retries: int = 0
    video_seconds_done: float = 0.0
    frames_reused: int = 0
    tiles_reused: int = 0
    tiles_computed: int = 0

    @property
    def fraction(self) -> float | None:
        if not self.frames_total:
            return None
        return min(1.0, self.frames_done / self.frames_total)


@dataclass(frozen=True)
class UpscaleResult:
    """What a finished run did; ``stage_busy_s`` shows which stage bounds the speed, ``device``/``precision``
    where the model really ran (a GPU request can fall back to the CPU). Reuse as in ``Progress``, and
    ``reuse_held_bytes``: the most its state held at once (anchor windows and the last output frame)."""

    source: str
    destination: str
    model: str
    scale: int
    frames: int
    seconds: float
    fps: float
    output: OutputInfo
    stage_busy_s: Mapping[str, float]
    stage_frames: Mapping[str, int] = field(default_factory=dict)
    device: str = "cpu"
    precision: str = "fp32"
    video_seconds: float = 0.0
    bytes_read: int = 0
    bytes_written: int = 0
    oom_retries: int = 0
    frames_reused: int = 0
    tiles_reused: int = 0
    tiles_computed: int = 0
    reuse_held_bytes: int = 0


ProgressCallback = Callable[[Progress], None]


def upscale(
    source: str,
    destination: str,
    options: UpscaleOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    upscaler: FrameUpscaler | None = None,
    metadata: Mapping[str, str] | None = None,
    exclusive: bool = False,
    span: tuple[Fraction | None, Fraction | None] | None = None,
    config: Config | None = None,
) -> UpscaleResult:
    """Upscale ``source`` into ``destination`` (local paths or any URI ``streamup.storage`` knows).

    Raises a ``StreamupError`` subclass for anything a user can act on: ``InputError`` (not a usable video),
    ``UsageError``/``ModelError`` (bad options or weights), ``OutputError``, ``Cancelled`` (``cancel`` was
    set). ``progress`` is called after every batch, one call at a time and in frame order, from
    whichever inference lane finished it.

    ``upscaler`` is a prebuilt one (a worker builds its model once and shares it across jobs); else one is
    built from ``options``. ``metadata`` is added to the output object's (e.g. a job id). ``exclusive`` never
    replaces an existing output: ``OutputExists`` before any work, or at the end if another run published
    first. ``span`` = (start, end) in seconds of the source's timeline (``None``: open end) upscales only
    the frames shown in [start, end), video only, with the source's timestamps and x264's ``stitchable``:
    one segment of a fanned-out job (``streamup.fanout``), which is why it seeks instead of decoding all.
    ``config`` (the face's settings, read once) reaches ``build_upscaler`` when no ``upscaler`` is given.
    """
    options = options or UpscaleOptions()
    mux.container_for(extension(destination))  # a bad extension is a usage error before any work
    check_sink(destination, exclusive=exclusive)  # a missing bucket fails in seconds, before the engine loads
    start = time.perf_counter()
    with decoding(source, deinterlace=options.deinterlace) as (decoder, reader):
        if span is not None:
            decoder.seek(*span)
        upscaler = AlphaUpscaler(upscaler or build_upscaler(options, config))  # RGBA: alpha beside RGB
        oom_before = upscaler.oom_retries
        tags = {"source": source, "model": upscaler.name, "scale": str(upscaler.scale),
                "streamup-version": __version__, **(metadata or {})}
        settings = EncodeSettings(options.codec, options.crf, options.preset, stitchable=span is not None,
                                  pix_fmt=options.pix_fmt, drop_alpha=options.drop_alpha)
        with encoding(destination, decoder, scale=upscaler.scale, settings=settings, metadata=tags,
                      exclusive=exclusive) as (encoder, writer):
            run = _Run(decoder, upscaler, encoder, progress, cancel,
                       counters=lambda: (reader.bytes, writer.bytes, upscaler.oom_retries - oom_before),
                       reuse=options.reuse)
            frames = run.execute()
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
        stage_busy_s=dict(run.clock.seconds),
        stage_frames=dict(run.clock.frames),
        device=upscaler.device,
        precision=upscaler.precision,
        video_seconds=decoder.info.duration or run.video_seconds_done,
        bytes_read=reader.bytes,
        bytes_written=writer.bytes,
        oom_retries=upscaler.oom_retries - oom_before,
        **run.reuse_totals(),
    )


def build_upscaler(options: UpscaleOptions, config: Config | None = None) -> FrameUpscaler:
    """The upscaler for ``options``, from the engine's backend table (``streamup.engine.backends``): the
    one door for faces and library users (a worker builds one and shares it across jobs). ``config`` says
    where weights come from; None reads the environment now (``Config.from_environ``). The engine is
    imported on first use: importing torch takes seconds, and an unusable input should be refused before
    that."""
    from streamup.engine import backends

    return backends.build(options, config or Config.from_environ())


def default_device() -> str:
    """Where ``device="auto"`` runs on this machine: "cuda" or "cpu" (imports torch)."""
    from streamup.engine.device import choose

    return choose().device.type


_END = object()  # end-of-stream marker passed down the channels


def _size(item: Any) -> int:
    """Bytes an item holds in a channel: a frame's pixels, a packet's payload."""
    if isinstance(item, VideoFrame):
        return item.image.nbytes
    if isinstance(item, tuple):  # (upscaled image, pts)
        return item[0].nbytes
    return item.size if isinstance(item, av.Packet) else 0


class _Run:
    """One run's stages: a decode thread, ``upscaler.lanes`` inference lanes (the caller's thread is the
    first) and an encode thread; the plumbing they share is ``streamup.pipeline.flow``'s."""

    def __init__(
        self,
        decoder: Decoder,
        upscaler: FrameUpscaler,
        encoder: Encoder,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        counters: Callable[[], tuple[int, int, int]],
        reuse: str = "auto",
    ) -> None:
        self.decoder, self.upscaler, self.encoder = decoder, upscaler, encoder
        # per run, so each fan-out segment starts fresh; only an engine with the tile door can reuse
        self._tiled = upscaler if reuse == "auto" and isinstance(upscaler, TiledUpscaler) else None
        self.reuse = Reuse(self._tiled.grid, upscaler.scale) if self._tiled else None
        self.progress = progress
        self.counters = counters  # (bytes read, bytes written, OOM retries) so far
        self.stop = StopFlag(cancel)
        self.decoded = Channel("decoded", DECODED_QUEUE, DECODED_BYTES, self.stop)
        self.upscaled = Channel("upscaled", UPSCALED_QUEUE, UPSCALED_BYTES, self.stop)
        self.clock = BusyClock(STAGES)
        self.turns = Turns(self.stop)
        self._take = threading.Lock()  # one lane at a time takes the next batch off the decoded queue
        self._taken = 0  # batches taken so far: the next batch's turn to be passed on
        self._ended = False  # a lane has taken the end of the stream: the others stop
        self._start = time.perf_counter()
        self._first_pts: Fraction | None = None
        self.video_seconds_done = 0.0

    def execute(self) -> int:
        """Run all stages to the end; returns the number of frames written or raises the first error."""
        stages = [("decode", self._decode), ("encode", self._encode)]
        stages += [(f"lane{i}", self._infer) for i in range(1, max(1, self.upscaler.lanes))]
        threads = [
            threading.Thread(target=self.stop.guard, args=(stage,), name=f"streamup-{name}", daemon=True)
            for name, stage in stages
        ]
        for t in threads:
            t.start()
        self.stop.guard(self._infer)
        try:
            for t in threads:
                t.join()
        except BaseException:  # Ctrl-C while waiting for the encoder to drain: stop it, then go
            self.stop.stop()
            for t in threads:
                t.join()
            raise
        if self.stop.error is not None:
            raise self.stop.error
        if self.stop.cancelled:
            raise Cancelled("cancelled; no output written")
        return self.clock.frames["encode"]

    # -- stages -----------------------------------------------------------------------------------------

    def _decode(self) -> None:
        items = iter(self.decoder)
        while True:
            with self.clock.busy("decode"):
                item = next(items, _END)
            if item is _END:
                break
            self.clock.frames["decode"] += isinstance(item, VideoFrame)
            self.decoded.put(item, _size(item))
        self.decoded.put(_END)

    def _infer(self) -> None:
        """One inference lane. Lanes take batches in turn, upscale them at the same time, and pass them on in
        the order they were taken, so frames and the packets between them leave in decode order."""
        while True:
            with self._take:
                if self._ended:
                    return
                turn, self._taken = self._taken, self._taken + 1
                items, choices, last = self._next_batch()
                self._ended = last
            frames = [i for i in items if isinstance(i, VideoFrame)]
            images: list[Any] = []
            if frames:
                with self.clock.busy("upscale"):
                    images = self._compute(frames, choices)
            with self.turns.wait(turn):
                if self.reuse and choices:
                    images = [self.reuse.fill(image, c) for image, c in zip(images, choices, strict=True)]
                self._pass_on(items, frames, images)
                if last:
                    self.upscaled.put(_END)
                    return

    def _compute(self, frames: list[VideoFrame], choices: list[Choice] | None) -> list[Any]:
        """The batch's upscaled frames; with reuse, only the chosen tiles, and None for a frame reused
        everywhere (``reuse.fill`` completes them in turn)."""
        if choices is None or self._tiled is None:
            return self.upscaler.upscale([f.image for f in frames])
        sent = [k for k, c in enumerate(choices) if c.compute]
        done = iter(self._tiled.upscale([frames[k].image for k in sent], [choices[k].compute for k in sent])
                    if sent else [])
        return [next(done) if c.compute else None for c in choices]

    def reuse_totals(self) -> dict[str, int]:
        """The reuse fields of ``UpscaleResult`` (zeros without reuse)."""
        return {**self.reuse.counts(), "reuse_held_bytes": self.reuse.held_bytes} if self.reuse else {}

    def _next_batch(self) -> tuple[list[VideoFrame | av.Packet], list[Choice] | None, bool]:
        """A batch of frames with the packets met between them, each frame's reuse choice (None without
        reuse), and whether the stream ended after it.

        Frames reused everywhere ride along with the next frames to compute (up to ``DECODED_BYTES`` of
        them): a batch of nothing to compute would hold a lane idle until the batches before it were passed
        on, and on animation on twos every other lane would wait (measured: two lanes ran as one)."""
        batch_frames = max(1, self.upscaler.batch_frames)
        items: list[VideoFrame | av.Packet] = []
        choices: list[Choice] = []
        count = riding = 0
        while count < batch_frames and riding <= DECODED_BYTES:
            item = self.decoded.get()
            if item is _END:
                return items, choices if self.reuse else None, True
            items.append(item)
            if not isinstance(item, VideoFrame):
                continue
            if self.reuse is None:
                count += 1
                continue
            choices.append(self.reuse.choose(item.image))
            if choices[-1].compute:
                count += 1
            else:
                riding += item.image.nbytes
        return items, choices if self.reuse else None, False

    def _pass_on(self, items: list[Any], frames: list[VideoFrame], images: list[Any]) -> None:
        """Queue a batch's upscaled frames and packets for the encoder (in its turn), then report."""
        if frames:
            self.clock.frames["upscale"] += len(frames)
            self._advance(frames[0], frames[-1])
        upscaled = iter(images)
        for item in items:
            out = (next(upscaled), item.pts) if isinstance(item, VideoFrame) else item
            self.upscaled.put(out, _size(out))
        self._report()

    def _advance(self, first: VideoFrame, last: VideoFrame) -> None:
        """Source seconds upscaled so far: the newest frame's time since the very first one's."""
        if first.pts is None or last.pts is None:
            return
        if self._first_pts is None:
            self._first_pts = first.pts * first.time_base
        t = last.pts * last.time_base
        self.video_seconds_done = max(self.video_seconds_done, float(t - self._first_pts))

    def _encode(self) -> None:
        while (item := self.upscaled.get()) is not _END:
            with self.clock.busy("encode"):
                if isinstance(item, tuple):
                    self.encoder.write_frame(*item)
                    self.clock.frames["encode"] += 1
                else:
                    self.encoder.write_packet(item)

    def _report(self) -> None:
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self._start
        done = self.clock.frames["upscale"]
        total = self.decoder.info.frames_estimate
        fps = done / elapsed if elapsed > 0 else 0.0
        eta = max(0.0, (total - done) / fps) if total and fps > 0 else None
        read, written, ooms = self.counters()
        self.progress(Progress(
            done, total, elapsed, fps, eta,
            stage_busy_s=dict(self.clock.seconds),
            stage_frames=dict(self.clock.frames),
            queue_fill={c.name: c.fill for c in (self.decoded, self.upscaled)},
            bytes_read=read,
            bytes_written=written,
            oom_retries=ooms,
            video_seconds_done=self.video_seconds_done,
            **(self.reuse.counts() if self.reuse else {}),
        ))
