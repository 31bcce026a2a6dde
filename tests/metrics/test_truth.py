"""Every counter against the truth, under any number of inference lanes and jobs at once.

The bug this guards against: the observer kept its "already counted" totals per job *and thread*, and a run's
progress snapshots come from each of its lanes in turn, so with two lanes every frame was counted twice
(Prometheus read 200/200/199 for a 100-frame clip). The truth here is independent of the metrics code: frames
from ffprobe on the outputs, bytes from the files' and objects' sizes, jobs from how each run really ended.

Three levels, cheapest first:
- in process, the full grid (lanes 1 and 2 x runs at once 1 and 2): ``run_observed`` with a lanczos upscaler
  that runs in ``lanes`` lanes, one frame per batch, so each lane sends many snapshots;
- a real ``streamup upscale --lanes 2`` process with the real default model, its ``/metrics`` read over HTTP;
- a real ``streamup worker --concurrency 2`` process (the real model's default two CPU lanes) running two jobs
  at once from SQS against moto, its ``/metrics`` read over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import boto3
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from streamup.engine.lanczos import LanczosUpscaler
from streamup.errors import InputError
from streamup.metrics import Metrics
from streamup.observe import JobRef, run_observed
from streamup.options import UpscaleOptions
from tests.conftest import REPO, media
from tests.media import probe
from tests.metrics.servers import free_port
from tests.storage.s3_endpoint import REGION, s3_env, serve

SAMPLE = REPO / "examples" / "sample.mp4"
STAGES = ("decode", "upscale", "encode")
WAIT_S = 240.0


class LanedLanczos(LanczosUpscaler):
    """Lanczos in ``lanes`` lanes, one frame per batch: the pipeline runs its lanes as it does for the CPU
    engine, and each lane reports every frame it passes on."""

    def __init__(self, lanes: int) -> None:
        super().__init__(2, batch_frames=1)
        self.lanes = lanes
        self.calls_by_thread: dict[int, int] = {}
        self._lock = threading.Lock()

    def upscale(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            ident = threading.get_ident()
            self.calls_by_thread[ident] = self.calls_by_thread.get(ident, 0) + 1
        return super().upscale(frames)


def _sample(m: Metrics, name: str, **labels: str) -> float:
    value = m.registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} not exported"
    return value


@pytest.mark.parametrize("concurrency", [1, 2])
@pytest.mark.parametrize("lanes", [1, 2])
def test_counters_equal_the_truth_in_process(tmp_path: Path, lanes: int, concurrency: int) -> None:
    """``concurrency`` runs at once into one ``Metrics``, each in ``lanes`` lanes, plus one run that fails:
    frames per stage, bytes both ways, video seconds and jobs by outcome are exactly the truth."""
    metrics = Metrics(CollectorRegistry(), process_collectors=False)
    upscaler = LanedLanczos(lanes)
    sources = [SAMPLE, media("faststart.mp4")][:concurrency]
    outputs = [tmp_path / f"out{i}.mkv" for i in range(concurrency)]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            run_observed(JobRef(f"job{i}", "basic", "cpu"), [metrics], str(sources[i]), str(outputs[i]),
                         UpscaleOptions(model="lanczos"), upscaler=upscaler)
        except BaseException as e:  # surfaced below with the thread's own traceback
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pytest.raises(InputError):
        run_observed(JobRef("bad", "basic", "cpu"), [metrics], str(media("bad_text.mp4")),
                     str(tmp_path / "bad.mkv"), UpscaleOptions(model="lanczos"), upscaler=upscaler)

    if lanes > 1:  # the lanes really took turns, so snapshots really came from several threads
        assert len(upscaler.calls_by_thread) == lanes * concurrency
    frames = sum(len(probe.frame_times(o)) for o in outputs)
    assert frames == sum(len(probe.frame_times(s)) for s in sources)
    for stage in STAGES:
        assert _sample(metrics, "streamup_frames_total", stage=stage) == frames
    written, read = sum(o.stat().st_size for o in outputs), sum(s.stat().st_size for s in sources)
    assert _sample(metrics, "streamup_bytes_total", direction="written") == written
    assert _sample(metrics, "streamup_bytes_total", direction="read") == read
    video_s = sum(float(probe.video(s)["duration"]) for s in sources)
    assert _sample(metrics, "streamup_video_seconds_total", tier="basic") == pytest.approx(video_s, abs=0.05)
    jobs = {status: _sample(metrics, "streamup_jobs_total", tier="basic", device="cpu", status=status)
            for status in ("succeeded", "failed", "cancelled", "retried")}
    assert jobs == {"succeeded": concurrency, "failed": 1, "cancelled": 0, "retried": 0}
    assert _sample(metrics, "streamup_jobs_in_progress") == 0


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a process's ``/metrics``, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _wait_for(what: str, check: object, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, KeyError):
            if check():  # type: ignore[operator]
                return
        if proc.poll() is not None:
            pytest.fail(f"process exited {proc.returncode} before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {what} within {WAIT_S:.0f} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()


@pytest.mark.slow
def test_a_cli_run_with_two_lanes_counts_each_frame_once(tmp_path: Path) -> None:
    """The real default model in two lanes (the CPU default), one process: the counters equal the clip."""
    port = free_port()
    out = tmp_path / "sample_x2.mkv"
    argv = [sys.executable, "-m", "streamup", "upscale", str(SAMPLE), str(out), "--lanes", "2", "--tier",
            "basic", "--no-progress", "--metrics-port", str(port), "--metrics-linger", "120"]
    with _process(argv, dict(os.environ), tmp_path / "cli.log") as proc:
        done = lambda: _value(_scrape(port), "streamup_jobs_total", tier="basic", device="cpu",  # noqa: E731
                              status="succeeded") == 1
        _wait_for("a succeeded job", done, proc, tmp_path / "cli.log")
        samples = _scrape(port)
    frames = len(probe.frame_times(out))
    assert frames == len(probe.frame_times(SAMPLE)) == 24
    counted = {stage: _value(samples, "streamup_frames_total", stage=stage) for stage in STAGES}
    assert counted == dict.fromkeys(STAGES, frames)
    assert _value(samples, "streamup_bytes_total", direction="written") == out.stat().st_size
    assert _value(samples, "streamup_bytes_total", direction="read") == SAMPLE.stat().st_size


@pytest.mark.slow
def test_a_worker_running_two_jobs_at_once_counts_each_frame_once(tmp_path: Path) -> None:
    """``--concurrency 2``, the real default model in its default two CPU lanes, two jobs at once: frames per
    stage equal the two outputs' ffprobe counts, bytes the objects' sizes, jobs by outcome two succeeded."""
    bucket, port = "truth", free_port()
    with serve() as s3:
        keys = {"endpoint_url": s3.endpoint, "region_name": REGION, "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing"}
        client, sqs = boto3.client("s3", **keys), boto3.client("sqs", **keys)
        client.create_bucket(Bucket=bucket)
        client.upload_file(str(SAMPLE), bucket, "in/a.mp4")
        client.upload_file(str(SAMPLE), bucket, "in/b.mp4")
        queue = sqs.create_queue(QueueName="truth-jobs")["QueueUrl"]
        for name in ("a", "b"):
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
                "jobId": f"truth-{name}", "inputKey": f"in/{name}.mp4", "outputKey": f"out/{name}.mp4",
                "parameters": {"device": "cpu", "scale_factor": 2}}))
        argv = [sys.executable, "-m", "streamup", "worker", "--queue-url", queue, "--bucket", bucket,
                "--concurrency", "2", "--preload", "basic", "--poll-seconds", "1",
                "--metrics-port", str(port)]
        log = tmp_path / "worker.log"
        with _process(argv, {**os.environ, **s3_env(s3.endpoint)}, log) as proc:
            def finished() -> bool:
                return _value(_scrape(port), "streamup_jobs_total", tier="basic", device="cpu",
                              status="succeeded") == 2
            _wait_for("two succeeded jobs", finished, proc, log)
            samples = _scrape(port)
        outputs = []
        for name in ("a", "b"):
            path = tmp_path / f"{name}.mp4"
            client.download_file(bucket, f"out/{name}.mp4", str(path))
            outputs.append(path)
    frames = sum(len(probe.frame_times(o)) for o in outputs)
    assert frames == 48
    counted = {stage: _value(samples, "streamup_frames_total", stage=stage) for stage in STAGES}
    assert counted == dict.fromkeys(STAGES, frames)
    written = sum(o.stat().st_size for o in outputs)
    assert _value(samples, "streamup_bytes_total", direction="written") == written
    assert _value(samples, "streamup_bytes_total", direction="read") == 2 * SAMPLE.stat().st_size
    jobs = {status: _value(samples, "streamup_jobs_total", tier="basic", device="cpu", status=status)
            for status in ("succeeded", "failed", "cancelled", "retried")}
    assert jobs == {"succeeded": 2, "failed": 0, "cancelled": 0, "retried": 0}
