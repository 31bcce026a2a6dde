"""Prometheus metrics for streamup: declared once here, fed only by what every caller of ``upscale()`` sees.

``Metrics`` is an observer (``streamup.observe.Observer``): the CLI and the worker hand it to
``run_observed``, and it turns the ``Progress`` snapshots and the final ``UpscaleResult`` into counters,
gauges and histograms. It never touches the engine or the storage classes. The snapshots are cumulative, so
per-job state holds the last one and each snapshot adds only its difference (counters must only rise, and a
worker runs several jobs at once into the same counters). At the end of a job the result tops the counters up
to its exact totals (the last snapshot comes before the encoder's flush): frames per stage equal the clip's
frames, video seconds its duration, bytes the bytes through source and sink.

Exposition: ``route()`` is the ``/metrics`` route for ``streamup.http_server`` (the worker's server, or the
CLI's under ``--metrics-port``); ``push()`` sends the final values to a Pushgateway grouped by job id, the
Prometheus convention for a batch run that ends before any scrape; ``one_shot`` wires both for one CLI run.

Every metric lives in the ``CollectorRegistry`` passed in (tests make their own; a process makes one), with
the default process, platform and GC collectors beside them. Names, labels and PromQL examples:
``docs/metrics.md``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
    push_to_gateway,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from streamup import config
from streamup.errors import UsageError
from streamup.http_server import HttpServer, serve
from streamup.observe import STATUSES
from streamup.pipeline import QUEUES, STAGES
from streamup.version import __version__

if TYPE_CHECKING:
    from streamup.observe import JobRef, Observer
    from streamup.pipeline import Progress, UpscaleResult

log = logging.getLogger("streamup")

# The exposition would carry a ``*_created`` gauge beside every counter and histogram: Prometheus 2 stores
# them as separate series nobody queries.
disable_created_metrics()

# Label values (with the pipeline's STAGES and QUEUES and observe's STATUSES) are created at zero up front, so
# a rate() over a series sees its first increase instead of a series that appears at its final value.
DIRECTIONS = ("read", "written")
TILE_OUTCOMES = ("computed", "reused")  # of the engine's tiles, under --reuse auto (streamup.pipeline.reuse)

# Busy seconds of one stage between two snapshots (one inference batch): ~50 ms for a lanczos batch of four
# 320x180 frames, 2.8 s per realesr-animevideov3 320x180 frame on a busy 2-core CPU (docs/metrics.md's run),
# minutes per RealESRGAN_x4plus 1080p frame on a CPU (docs/benchmarks.md): past 600 s is +Inf.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
                 600)
# Whole jobs, seconds to a day. The seed's tier promises for 10 s / 1 min / 5 min of 1080p video are bucket
# bounds (25, 50, 150, 240, 300, 480, 750, 1500, 3000, 7500, 15000 s: benchmarks/tiers.py CLAIMED), so
# "share of jobs within the promise" is exact rather than interpolated.
JOB_BUCKETS = (1, 2.5, 5, 10, 25, 50, 100, 150, 240, 300, 480, 750, 1500, 3000, 7500, 15000, 30000, 86400)

PUSH_JOB = "streamup"  # the Pushgateway's job label for pushed runs; job_id is the grouping key
PUSH_TIMEOUT_S = 10.0


@dataclass
class _Seen:
    """What a job had reported by its previous snapshot: each new one adds only the difference."""

    busy: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    oom_retries: int = 0
    video_seconds: float = 0.0
    reused_frames: int = 0
    tiles: dict[str, int] = field(default_factory=dict)


class Metrics:
    """streamup's metrics in ``registry``, fed as an ``Observer``; one per process, shared by its jobs.

    Thread-safe: the worker's jobs call it from their own threads. ``job_progress`` does arithmetic and a
    few counter increments under one lock: no I/O, nothing that waits (it runs on the inference thread).
    It costs about 40 us per snapshot (20,000 snapshots, 2-core AMD EPYC under load), against milliseconds
    to seconds per inference batch.
    """

    def __init__(self, registry: CollectorRegistry, *, process_collectors: bool = True) -> None:
        self.registry = registry
        r = registry
        self.frames = Counter("streamup_frames", "Frames each stage has finished.", ["stage"], registry=r)
        self.stage_seconds = Histogram(
            "streamup_stage_seconds", "Busy seconds of a stage per inference batch (between two progress "
            "snapshots): where the time goes.", ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "streamup_queue_depth", "How full each bounded queue between stages is, 0..1 (of items or bytes, "
            "whichever is fuller); a full queue waits on the stage after it.", ["queue"], registry=r)
        self.video_seconds = Counter(
            "streamup_video_seconds", "Seconds of source video upscaled; its rate is the real-time factor.",
            ["tier"], registry=r)
        self.jobs = Counter("streamup_jobs", "Jobs finished, by tier, requested device and outcome.",
                            ["tier", "device", "status"], registry=r)
        self.job_duration = Histogram(
            "streamup_job_duration_seconds", "Wall seconds of each succeeded job, model load included.",
            ["tier"], buckets=JOB_BUCKETS, registry=r)
        self.in_progress = Gauge("streamup_jobs_in_progress", "Jobs running now.", registry=r)
        self.bytes = Counter("streamup_bytes", "Bytes read from sources and written to sinks.", ["direction"],
                             registry=r)
        self.oom_retries = Counter(
            "streamup_oom_retries", "CUDA out-of-memory errors survived by halving the batch or tile.",
            registry=r)
        self.reused_frames = Counter(
            "streamup_reused_frames", "Frames whose picture had not changed: no network ran for them.",
            registry=r)
        self.tiles = Counter(
            "streamup_tiles", "Tiles of the engine's grid, computed by the network or reused unchanged.",
            ["outcome"], registry=r)
        self.build = Info("streamup_build", "Version, torch, and where the model runs.", registry=r)
        r.register(_GpuMemory())
        if process_collectors:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        for s in STAGES:
            self.frames.labels(s)
            self.stage_seconds.labels(s)
        for q in QUEUES:
            self.queue_depth.labels(q)
        for d in DIRECTIONS:
            self.bytes.labels(d)
        for o in TILE_OUTCOMES:
            self.tiles.labels(o)
        self._build = {"version": __version__, "torch": _torch_version(), "device": "", "precision": "",
                       "model": ""}
        self.build.info(self._build)
        # Per run, keyed by job id and run number (``JobRef.run``): a run's snapshots come from each of its
        # inference lanes in turn, and two runs of one job (fan-out segments) may be under way at once.
        self._seen: dict[tuple[str, int], _Seen] = {}
        self._lock = threading.Lock()

    # -- Observer ---------------------------------------------------------------------------------------

    def job_started(self, job: JobRef) -> None:
        with self._lock:
            self._seen[_run_key(job)] = _Seen()
            self.in_progress.inc()
            self.video_seconds.labels(job.tier)
            self.job_duration.labels(job.tier)
            for status in STATUSES:
                self.jobs.labels(job.tier, job.device, status)

    def job_progress(self, job: JobRef, progress: Progress) -> None:
        with self._lock:
            for queue, fill in progress.queue_fill.items():
                self.queue_depth.labels(queue).set(fill)
            seen = self._seen.setdefault(_run_key(job), _Seen())
            self._advance(job, seen, progress.stage_busy_s, progress.stage_frames, progress.bytes_read,
                          progress.bytes_written, progress.oom_retries, progress.video_seconds_done)
            self._reuse(seen, progress.frames_reused,
                        {"computed": progress.tiles_computed, "reused": progress.tiles_reused})

    def job_finished(self, job: JobRef, status: str, seconds: float, result: UpscaleResult | None) -> None:
        with self._lock:
            seen = self._seen.pop(_run_key(job), _Seen())
            if result is not None:  # the encoder's flush came after the last snapshot: top up to the totals
                self._advance(job, seen, result.stage_busy_s, result.stage_frames, result.bytes_read,
                              result.bytes_written, result.oom_retries, result.video_seconds)
                self._reuse(seen, result.frames_reused,
                            {"computed": result.tiles_computed, "reused": result.tiles_reused})
                self.describe_model(result.model, result.device, result.precision)
            if status == "succeeded":
                self.job_duration.labels(job.tier).observe(seconds)
            self.jobs.labels(job.tier, job.device, status).inc()
            self.in_progress.dec()
            if not self._seen:  # nothing runs: the queues are empty, not frozen at the last job's fill
                for q in QUEUES:
                    self.queue_depth.labels(q).set(0)

    # -- what a face tells it ---------------------------------------------------------------------------

    def describe_model(self, model: str, device: str, precision: str) -> None:
        """Label ``streamup_build_info`` with the model and where it runs. Each finished job's result does
        it; a face that loads its model before any job may call it then."""
        build = {**self._build, "model": model, "device": device, "precision": precision}
        if build != self._build:
            self._build = build
            self.build.info(build)

    # -- exposition -------------------------------------------------------------------------------------

    def route(self) -> tuple[int, str, bytes]:
        """The ``/metrics`` route for ``streamup.http_server``: the text exposition format."""
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def push(self, gateway: str, job_id: str) -> None:
        """Send the current values to a Pushgateway as group ``job="streamup", job_id=<id>`` (replacing that
        group: a retried job's last push wins)."""
        push_to_gateway(gateway, job=PUSH_JOB, registry=self.registry, grouping_key={"job_id": job_id},
                        timeout=PUSH_TIMEOUT_S)

    # -- internals --------------------------------------------------------------------------------------

    def _advance(self, job: JobRef, seen: _Seen, busy: Mapping[str, float], frames: Mapping[str, int],
                 read: int, written: int, oom_retries: int, video_seconds: float) -> None:
        """Add what this job did since ``seen`` and remember the new totals (never subtracting); each stage's
        busy time since then is one ``stage_seconds`` observation."""
        for stage, seconds in busy.items():
            if seconds > seen.busy.get(stage, 0.0):
                self.stage_seconds.labels(stage).observe(seconds - seen.busy.get(stage, 0.0))
                seen.busy[stage] = seconds
        for stage, n in frames.items():
            if n > seen.frames.get(stage, 0):
                self.frames.labels(stage).inc(n - seen.frames.get(stage, 0))
                seen.frames[stage] = n
        for direction, n in (("read", read), ("written", written)):
            if n > seen.bytes.get(direction, 0):
                self.bytes.labels(direction).inc(n - seen.bytes.get(direction, 0))
                seen.bytes[direction] = n
        if oom_retries > seen.oom_retries:
            self.oom_retries.inc(oom_retries - seen.oom_retries)
            seen.oom_retries = oom_retries
        if video_seconds > seen.video_seconds:
            self.video_seconds.labels(job.tier).inc(video_seconds - seen.video_seconds)
            seen.video_seconds = video_seconds

    def _reuse(self, seen: _Seen, reused_frames: int, tiles: Mapping[str, int]) -> None:
        """Add the frames and tiles reused (and tiles computed) since ``seen``, as ``_advance`` does."""
        if reused_frames > seen.reused_frames:
            self.reused_frames.inc(reused_frames - seen.reused_frames)
            seen.reused_frames = reused_frames
        for outcome, n in tiles.items():
            if n > seen.tiles.get(outcome, 0):
                self.tiles.labels(outcome).inc(n - seen.tiles.get(outcome, 0))
                seen.tiles[outcome] = n


class _GpuMemory:
    """``streamup_gpu_memory_bytes{device,kind}``: CUDA memory now reserved by torch's allocator and its
    peak, read at scrape time. Present only once this process has initialised CUDA; torch is not imported
    for it (a CPU process, or one that has not loaded a model yet, exports nothing)."""

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("streamup_gpu_memory_bytes", "CUDA memory held by torch.",
                                 labels=["device", "kind"])

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        torch = sys.modules.get("torch")
        if torch is None or not torch.cuda.is_initialized():
            return []
        family = self._family()
        for index in range(torch.cuda.device_count()):
            name = f"cuda:{index}"
            family.add_metric([name, "reserved"], torch.cuda.memory_reserved(index))
            family.add_metric([name, "peak"], torch.cuda.max_memory_reserved(index))
        return [family]


def _run_key(job: JobRef) -> tuple[str, int]:
    return job.id, job.run


def process_metrics() -> Metrics:
    """The one ``Metrics`` of a process (a worker, a CLI run), in a registry of its own with the process
    collectors."""
    return Metrics(CollectorRegistry())


def _torch_version() -> str:
    """torch's version from its package metadata: importing torch takes seconds."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return ""


@contextlib.contextmanager
def one_shot(job_id: str, *, port: int | None, pushgateway: str | None, linger_s: float,
             stop: threading.Event, host: str = config.HTTP_HOST_DEFAULT) -> Iterator[list[Observer]]:
    """Metrics for one CLI run: the observers to hand ``run_observed`` (none when neither ``port`` nor
    ``pushgateway`` is given, so a plain run pays nothing).

    With ``port``, ``/metrics`` is served on ``host`` (the face's ``Config.http_host``) for the whole run
    and for ``linger_s`` seconds after it, so a scraper sees the final values of a run shorter than its
    scrape interval; ``stop`` (the CLI's cancel event, set by SIGINT/SIGTERM) ends the wait early. With
    ``pushgateway`` the final values are pushed when the run ends, however it ends. A failed push is a
    warning, never the run's outcome.
    """
    if port is None and not pushgateway:
        yield []
        return
    metrics = process_metrics()
    server: HttpServer | None = None
    if port is not None:
        try:
            server = serve(host, port, {"/metrics": metrics.route})
        except OSError as e:  # taken, or not an address of this machine: a usage error, before any work
            raise UsageError(f"cannot serve /metrics on {host}:{port}: {e.strerror or e}") from None
        log.info("metrics on http://%s:%d/metrics", server.host, server.port)
    try:
        yield [metrics]
    finally:
        try:
            if pushgateway:
                try:
                    metrics.push(pushgateway, job_id)
                except OSError as e:
                    log.warning("could not push metrics to %s: %s", pushgateway, e)
            if server is not None and linger_s > 0 and not stop.is_set():
                log.info("run ended; /metrics stays up %g s more for a last scrape", linger_s)
                stop.wait(linger_s)
        finally:
            if server is not None:
                server.close()
