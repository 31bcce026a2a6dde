"""streamup.metrics as an observer: fed the snapshots and results the pipeline hands every caller, each in a
registry of its own; and its one-shot exposition served over real HTTP. The whole stack (a real run scraped by
a real Prometheus, a real Pushgateway, every dashboard query and rule) is tests/metrics/."""

from __future__ import annotations

import importlib.metadata
import logging
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from streamup.errors import UsageError
from streamup.media.mux import OutputInfo
from streamup.metrics import Metrics, one_shot
from streamup.observe import JobRef
from streamup.pipeline import Progress, UpscaleResult
from streamup.version import __version__
from tests.metrics.servers import free_port

A = JobRef("a", "basic", "cpu")
B = JobRef("b", "pro", "gpu")


def snapshot(frames: int, busy: float, *, video: float, read: int, written: int, ooms: int = 0,
             fill: float = 0.5) -> Progress:
    """A ``Progress`` as the pipeline reports it: cumulative per stage."""
    return Progress(frames, 100, busy, 1.0, None,
                    stage_busy_s={"decode": busy / 4, "upscale": busy, "encode": busy / 2},
                    stage_frames={"decode": frames + 4, "upscale": frames, "encode": max(0, frames - 3)},
                    queue_fill={"decoded": fill, "upscaled": fill / 2},
                    bytes_read=read, bytes_written=written, oom_retries=ooms, video_seconds_done=video)


def result(frames: int, busy: float, *, video: float, read: int, written: int,
           ooms: int = 0) -> UpscaleResult:
    return UpscaleResult(
        "in.mp4", "out.mp4", "realesr-animevideov3", 2, frames, 9.5, frames / 9.5,
        OutputInfo("mp4", "libx264", "yuv420p", 640, 360, ()),
        stage_busy_s={"decode": busy / 4, "upscale": busy, "encode": busy / 2},
        stage_frames=dict.fromkeys(("decode", "upscale", "encode"), frames),
        device="cpu", precision="fp32", video_seconds=video, bytes_read=read, bytes_written=written,
        oom_retries=ooms)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry(), process_collectors=False)


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_two_jobs_at_once_add_up_to_their_results(metrics: Metrics) -> None:
    metrics.job_started(A)
    metrics.job_started(B)
    assert value(metrics, "streamup_jobs_in_progress") == 2
    metrics.job_progress(A, snapshot(4, 2.0, video=0.125, read=1000, written=100))
    metrics.job_progress(B, snapshot(4, 1.0, video=0.125, read=5000, written=300, ooms=1))
    metrics.job_progress(A, snapshot(8, 5.0, video=0.29, read=2000, written=400))
    metrics.job_progress(B, snapshot(8, 1.0, video=0.29, read=5000, written=300, ooms=1))  # B idle: no busy
    # Midway: each stage's frames are the two jobs' latest counts together.
    assert value(metrics, "streamup_frames_total", stage="upscale") == 16
    assert value(metrics, "streamup_frames_total", stage="decode") == 24
    assert value(metrics, "streamup_bytes_total", direction="read") == 7000
    assert value(metrics, "streamup_oom_retries_total") == 1
    assert value(metrics, "streamup_queue_depth", queue="decoded") == 0.5

    metrics.job_finished(A, "succeeded", 9.5, result(10, 6.0, video=0.4167, read=2500, written=900))
    metrics.job_finished(B, "failed", 3.0, None)
    assert value(metrics, "streamup_jobs_in_progress") == 0
    # A's result tops its counts up to the totals; B keeps what it had done before it failed.
    assert value(metrics, "streamup_frames_total", stage="upscale") == 18
    assert value(metrics, "streamup_frames_total", stage="encode") == 10 + 5
    assert value(metrics, "streamup_bytes_total", direction="read") == 2500 + 5000
    assert value(metrics, "streamup_bytes_total", direction="written") == 900 + 300
    assert value(metrics, "streamup_video_seconds_total", tier="basic") == pytest.approx(0.4167)
    assert value(metrics, "streamup_video_seconds_total", tier="pro") == pytest.approx(0.29)
    # One observation per batch that had busy time, summing to each stage's total busy seconds.
    assert value(metrics, "streamup_stage_seconds_count", stage="upscale") == 3 + 1
    assert value(metrics, "streamup_stage_seconds_sum", stage="upscale") == pytest.approx(6.0 + 1.0)
    assert value(metrics, "streamup_jobs_total", tier="basic", device="cpu", status="succeeded") == 1
    assert value(metrics, "streamup_jobs_total", tier="pro", device="gpu", status="failed") == 1
    assert value(metrics, "streamup_jobs_total", tier="pro", device="gpu", status="succeeded") == 0
    # Durations are of succeeded jobs only: a job that fails fast is not a fast job.
    assert value(metrics, "streamup_job_duration_seconds_count", tier="basic") == 1
    assert value(metrics, "streamup_job_duration_seconds_bucket", tier="basic", le="10.0") == 1
    assert value(metrics, "streamup_job_duration_seconds_count", tier="pro") == 0
    # Nothing runs: the queues read empty, not frozen at the last job's fill.
    assert value(metrics, "streamup_queue_depth", queue="decoded") == 0
    build = {"version": __version__, "torch": importlib.metadata.version("torch"),
             "model": "realesr-animevideov3", "device": "cpu", "precision": "fp32"}
    assert value(metrics, "streamup_build_info", **build) == 1


def test_two_segments_of_one_job_at_once_on_two_threads_both_count(metrics: Metrics) -> None:
    """Fan-out runs segments of one job (one JobRef) at once; each run is told apart by its thread."""
    step = threading.Barrier(2)

    def segment(frames: int) -> None:
        metrics.job_started(A)
        step.wait()
        metrics.job_progress(A, snapshot(frames - 2, 1.0, video=0.1, read=100, written=10))
        step.wait()
        metrics.job_finished(A, "succeeded", 2.0, result(frames, 1.5, video=0.5, read=200, written=20))

    threads = [threading.Thread(target=segment, args=(n,)) for n in (10, 14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert value(metrics, "streamup_frames_total", stage="upscale") == 24
    assert value(metrics, "streamup_bytes_total", direction="read") == 400
    assert value(metrics, "streamup_video_seconds_total", tier="basic") == pytest.approx(1.0)
    assert value(metrics, "streamup_jobs_total", tier="basic", device="cpu", status="succeeded") == 2
    assert value(metrics, "streamup_jobs_in_progress") == 0


def test_series_exist_at_zero_before_any_work(metrics: Metrics) -> None:
    """So that rate() sees a job's first increase; a job's tier and statuses appear when it starts."""
    for stage in ("decode", "upscale", "encode"):
        assert value(metrics, "streamup_frames_total", stage=stage) == 0
    assert value(metrics, "streamup_jobs_total", tier="basic", device="cpu", status="failed") is None
    metrics.job_started(A)
    for status in ("succeeded", "failed", "cancelled", "retried"):
        assert value(metrics, "streamup_jobs_total", tier="basic", device="cpu", status=status) == 0
    assert value(metrics, "streamup_video_seconds_total", tier="basic") == 0
    assert value(metrics, "streamup_job_duration_seconds_count", tier="basic") == 0


def test_exposition_has_every_family_and_no_gpu_gauge_without_cuda() -> None:
    metrics = Metrics(CollectorRegistry())
    status, content_type, body = metrics.route()
    assert status == 200 and content_type.startswith("text/plain;")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"streamup_frames", "streamup_stage_seconds", "streamup_queue_depth", "streamup_video_seconds",
            "streamup_jobs", "streamup_job_duration_seconds", "streamup_jobs_in_progress", "streamup_bytes",
            "streamup_oom_retries", "streamup_build_info", "process_resident_memory_bytes",
            "python_gc_objects_collected"} <= names
    assert "streamup_gpu_memory_bytes" not in names  # this process has not initialised CUDA
    assert not any(n.endswith("_created") for n in names)


def test_one_shot_serves_metrics_over_http_and_lingers_until_stopped() -> None:
    stop = threading.Event()
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    lingering = threading.Thread(target=_one_shot_run, args=(port, stop))
    lingering.start()
    try:
        body = _get_when_up(url)
        assert 'streamup_jobs_total{device="cpu",status="succeeded",tier="basic"} 1.0' in body
    finally:
        stop.set()  # what SIGTERM does in the CLI
        lingering.join(timeout=10)
    assert not lingering.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


def test_one_shot_without_port_or_gateway_observes_nothing() -> None:
    with one_shot("job", port=None, pushgateway=None, linger_s=60, stop=threading.Event()) as observers:
        assert observers == []


def test_a_push_that_fails_is_a_warning_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="streamup"), \
            one_shot("job", port=None, pushgateway=closed, linger_s=0, stop=threading.Event()) as observers:
        assert len(observers) == 1
    assert f"could not push metrics to {closed}" in caplog.text


def test_a_metrics_port_in_use_is_a_usage_error_before_any_work() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot serve /metrics on 127.0.0.1:{port}"), \
                one_shot("job", port=port, pushgateway=None, linger_s=0, stop=threading.Event()):
            pytest.fail("no run may start")


def _one_shot_run(port: int, stop: threading.Event) -> None:
    with one_shot("a", port=port, pushgateway=None, linger_s=120, stop=stop) as (metrics,):
        metrics.job_started(A)
        metrics.job_finished(A, "succeeded", 1.0, result(1, 0.1, video=0.04, read=1, written=1))


def _get_when_up(url: str) -> str:
    """The exposition once the finished job shows in it: a scrape may land between the job's two updates
    (in-progress down, succeeded up), so wait for both rather than for the first."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body = r.read().decode()
            if '",status="succeeded",tier="basic"} 1.0' in body and "streamup_jobs_in_progress 0.0" in body:
                return body
        except urllib.error.URLError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never served the finished job")
