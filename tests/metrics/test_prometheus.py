"""A real ``streamup upscale --metrics-port`` run and a real ``streamup worker`` job, scraped by a real
Prometheus, and the run's push to a real Pushgateway scraped too; then every metric, every dashboard query and
every rule is asked of that server.

The two run at once and serve the whole module (25 CPU-seconds, mostly importing torch; 44 s of wall time
while the 2 cores were shared at a load average of 18):
examples/sample.mp4 (24 frames, 1 s) upscaled 2x with the lanczos model under tier ``basic``; the CLI reads
the local file, the worker takes an SQS message for the same clip in S3 (moto serves both), and both write an
S3 object, so bytes read and written can be compared with both files' sizes exactly (a seekable local mp4
may rewrite its header in place, which a byte counter sees twice). ffprobe counts the clip's frames and gives
the video stream's duration (the container's, 1.004 s, includes the longer audio).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from streamup import config
from tests.conftest import REPO
from tests.media import probe
from tests.metrics import promql
from tests.metrics.servers import Prometheus, QueryError, free_port, prometheus, pushgateway
from tests.storage.s3_endpoint import REGION, s3_env, serve

SAMPLE = REPO / "examples" / "sample.mp4"
BUCKET = "metrics"
KEY = "sample_x2.mp4"  # the CLI's job id is the output's name: the Pushgateway group
WORKER_KEY = "worker_x2.mp4"
# Scrape jobs of the CLI run and the worker; the job label of the CLI's push.
CLI_JOB, WORKER_JOB, PUSH_JOB = "streamup-cli", "streamup-worker", "streamup"
WAIT_S = 90.0
#: How often Prometheus scrapes here: the CLI's lanczos run lasts about half a second now that the lanczos
#: backend imports no torch, and the test below wants samples taken while it runs.
SCRAPE_INTERVAL = "200ms"

# Series only a process that has initialised CUDA exports (streamup.metrics._GpuMemory): none here.
CUDA_ONLY = "streamup_gpu_memory_bytes"


@dataclass
class Run:
    prom: Prometheus
    procs: dict[str, subprocess.Popen[bytes]]  # scrape job -> its process
    written: dict[str, int]  # scrape job -> size of the object it wrote
    frames: int
    duration: float
    input_bytes: int


def _wait(prom: Prometheus, expr: str, procs: Iterable[subprocess.Popen[bytes]] = ()) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if prom.query(expr):
            return
        for proc in procs:
            assert proc.poll() is None, f"{proc.args} exited {proc.returncode}"
        time.sleep(0.2)
    raise AssertionError(f"no data for {expr} after {WAIT_S} s")


def _push_sqs_standin(gateway: str) -> None:
    """SQS queue lengths as YACE exports them (no CloudWatch here): what StreamupQueueBacklogGrowing and
    the dashboard's backlog panel read."""
    registry = CollectorRegistry()
    gauge = Gauge("aws_sqs_approximate_number_of_messages_visible_average", "SQS visible messages (stand-in)",
                  ["dimension_QueueName"], registry=registry)
    gauge.labels("upscale-cpu-queue").set(3)
    push_to_gateway(gateway, job="yace", registry=registry)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The CLI run and a worker's job on the same clip, at once, under one Prometheus."""
    work = tmp_path_factory.mktemp("prometheus")
    ports = {CLI_JOB: free_port(), WORKER_JOB: free_port()}
    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(serve())
        gateway = stack.enter_context(pushgateway(work))
        env = {**os.environ, **s3_env(s3.endpoint)}
        keys = {"endpoint_url": s3.endpoint, "region_name": REGION, "aws_access_key_id": "testing",
                "aws_secret_access_key": "testing"}
        client, sqs = boto3.client("s3", **keys), boto3.client("sqs", **keys)
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(SAMPLE), BUCKET, "in/sample.mp4")
        queue = sqs.create_queue(QueueName="metrics-jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({
            "jobId": "metrics-1", "inputKey": "in/sample.mp4", "outputKey": WORKER_KEY,
            "parameters": {"device": "cpu", "scale_factor": 2, "tier": "basic", "model": "lanczos"}}))
        _push_sqs_standin(gateway)
        targets = {job: f"127.0.0.1:{port}" for job, port in ports.items()}
        targets["pushgateway"] = gateway.removeprefix("http://")
        prom = stack.enter_context(
            prometheus(work, targets, rule_files=[promql.RULES], honor_labels=["pushgateway"],
                       interval=SCRAPE_INTERVAL))
        _wait(prom, 'up{job="pushgateway"} == 1')  # scraping has begun: the runs' first samples count
        streamup = [sys.executable, "-m", "streamup"]
        procs = {
            # The CLI's Pushgateway comes from the environment (STREAMUP_PUSHGATEWAY), the rest from flags.
            CLI_JOB: _start([*streamup, "upscale", str(SAMPLE), f"s3://{BUCKET}/{KEY}", "--tier", "basic",
                             "--model", "lanczos", "--no-progress", "--metrics-port", str(ports[CLI_JOB]),
                             "--metrics-linger", "120"],
                            {**env, config.PUSHGATEWAY: gateway}, work / "cli.log"),
            # The worker's port comes from the environment (STREAMUP_METRICS_PORT).
            WORKER_JOB: _start([*streamup, "worker", "--queue-url", queue, "--bucket", BUCKET, "--preload",
                                "basic", "--poll-seconds", "1"],
                               {**env, config.METRICS_PORT: str(ports[WORKER_JOB])}, work / "worker.log"),
        }
        try:
            for job in (CLI_JOB, WORKER_JOB):
                _wait(prom, f'streamup_jobs_total{{job="{job}",status="succeeded"}} == 1', procs.values())
            _wait(prom, f'streamup_jobs_total{{job="{PUSH_JOB}",job_id="{KEY}",status="succeeded"}} == 1',
                  procs.values())
            written = {job: client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
                       for job, key in ((CLI_JOB, KEY), (WORKER_JOB, WORKER_KEY))}
            yield Run(prom, procs, written, len(probe.frame_times(SAMPLE)),
                      float(probe.video(SAMPLE)["duration"]), SAMPLE.stat().st_size)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                proc.wait()


def _value(run: Run, job: str, expr: str) -> float:
    """The one value of ``expr`` (a metric, with or without labels) in scrape job ``job``."""
    selector = expr.replace("{", f'{{job="{job}",', 1) if "{" in expr else f'{expr}{{job="{job}"}}'
    return run.prom.value(selector)


METRICS = (
    "streamup_frames_total", "streamup_stage_seconds_bucket", "streamup_stage_seconds_sum",
    "streamup_stage_seconds_count", "streamup_queue_depth", "streamup_video_seconds_total",
    "streamup_jobs_total", "streamup_job_duration_seconds_bucket", "streamup_job_duration_seconds_sum",
    "streamup_job_duration_seconds_count", "streamup_jobs_in_progress", "streamup_bytes_total",
    "streamup_oom_retries_total", "streamup_build_info",
    # the default collectors
    "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "python_info",
    "python_gc_collections_total",
)


def test_every_metric_is_scraped_from_the_runs_and_from_the_push(run: Run) -> None:
    for job in (CLI_JOB, WORKER_JOB, PUSH_JOB):
        missing = [m for m in METRICS if not run.prom.query(f'{m}{{job="{job}"}}')]
        assert not missing, f"{job}: {missing}"
    # No CUDA in these processes: the GPU gauge is absent rather than a misleading zero.
    assert run.prom.query(f'streamup_build_info{{job="{CLI_JOB}",device="cpu"}}')
    assert not run.prom.query(CUDA_ONLY)


@pytest.mark.parametrize("job", [CLI_JOB, WORKER_JOB])
def test_values_match_the_clip_and_the_files(run: Run, job: str) -> None:
    assert run.frames == 24 and run.duration == pytest.approx(1.0)
    for stage in ("decode", "upscale", "encode"):
        assert _value(run, job, f'streamup_frames_total{{stage="{stage}"}}') == run.frames
        assert 0 < _value(run, job, f'streamup_stage_seconds_sum{{stage="{stage}"}}') < 60
        assert _value(run, job, f'streamup_stage_seconds_count{{stage="{stage}"}}') >= 1
    video_seconds = _value(run, job, 'streamup_video_seconds_total{tier="basic"}')
    assert video_seconds == pytest.approx(run.duration, abs=1e-6)
    assert _value(run, job, 'streamup_bytes_total{direction="read"}') == run.input_bytes
    assert _value(run, job, 'streamup_bytes_total{direction="written"}') == run.written[job]
    assert _value(run, job, 'streamup_jobs_total{tier="basic",device="cpu",status="succeeded"}') == 1
    for status in ("failed", "cancelled", "retried"):
        assert _value(run, job, f'streamup_jobs_total{{tier="basic",device="cpu",status="{status}"}}') == 0
    assert _value(run, job, 'streamup_job_duration_seconds_count{tier="basic"}') == 1
    assert _value(run, job, "streamup_oom_retries_total") == 0
    assert _value(run, job, "streamup_jobs_in_progress") == 0
    for queue in ("decoded", "upscaled"):
        assert _value(run, job, f'streamup_queue_depth{{queue="{queue}"}}') == 0  # idle: nothing queued
    (build,) = run.prom.query(f'streamup_build_info{{job="{job}"}}')
    assert {k: build["metric"][k] for k in ("model", "device", "precision", "version", "torch")} == {
        "model": "lanczos", "device": "cpu", "precision": "fp32",
        "version": importlib.metadata.version("streamup"), "torch": importlib.metadata.version("torch")}
    assert _value(run, job, "process_resident_memory_bytes") > 50e6


def test_the_cli_run_was_scraped_while_it_ran(run: Run) -> None:
    """Samples during the run, so the dashboard's rates have an increase to show (the CLI's lanczos job lasts
    a few of the 200 ms scrape intervals; the worker's, its model loaded, may fall between two)."""
    assert run.prom.value(f'max_over_time(streamup_jobs_in_progress{{job="{CLI_JOB}"}}[5m])') == 1
    assert run.prom.value(f'sum(increase(streamup_frames_total{{job="{CLI_JOB}"}}[5m]))') > 0


def test_the_push_holds_the_final_values(run: Run) -> None:
    group = f'job="{PUSH_JOB}",job_id="{KEY}"'
    assert run.prom.value(f'sum(streamup_frames_total{{{group}}})') == 3 * run.frames
    assert run.prom.value(f'streamup_video_seconds_total{{{group}}}') == pytest.approx(run.duration, abs=1e-6)
    assert run.prom.value(f'streamup_bytes_total{{{group},direction="written"}}') == run.written[CLI_JOB]
    assert run.prom.value(f'streamup_jobs_total{{{group},status="succeeded"}}') == 1
    assert run.prom.value(f'push_time_seconds{{{group}}}') > time.time() - 600  # the Pushgateway's stamp


def _expressions() -> list[promql.Expression]:
    return promql.dashboard_expressions() + promql.rule_expressions()


@pytest.mark.parametrize("e", _expressions(), ids=lambda e: e.where)
def test_every_dashboard_and_rule_expression_returns_data(run: Run, e: promql.Expression) -> None:
    expr = promql.as_bool(e.expr) if e.alert else e.expr
    try:
        run.prom.query(e.expr)  # as written (a quiet alert returns nothing)
        result = run.prom.query(expr)
    except QueryError as err:
        pytest.fail(f"{e.where}: Prometheus refused it: {err}")
    if CUDA_ONLY in expr:
        assert result == [], "no CUDA here"
    else:
        assert result, f"{e.where}: no data for {expr}"


def test_sigterm_ends_the_linger_and_the_worker_and_both_exit_0(run: Run) -> None:
    for proc in run.procs.values():
        assert proc.poll() is None  # the CLI still serves /metrics (--metrics-linger 120); the worker polls
        proc.send_signal(signal.SIGTERM)
    # Well before the 120 s linger; the interpreter's own exit after a torch run takes seconds on a busy CPU.
    assert [proc.wait(timeout=60) for proc in run.procs.values()] == [0, 0]


def test_dashboard_queries_are_many_and_cover_every_metric() -> None:
    text = " ".join(e.expr for e in _expressions())
    for name in ("streamup_frames_total", "streamup_stage_seconds", "streamup_queue_depth",
                 "streamup_video_seconds_total", "streamup_jobs_total", "streamup_job_duration_seconds",
                 "streamup_jobs_in_progress", "streamup_bytes_total", "streamup_oom_retries_total",
                 CUDA_ONLY, "streamup_build_info", "process_resident_memory_bytes"):
        assert name in text, name
    assert Path(promql.DASHBOARD).exists() and len(promql.dashboard_expressions()) >= 15
