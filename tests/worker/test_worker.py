"""``streamup worker`` end to end: real worker processes against moto's SQS and S3 on 127.0.0.1.

Most jobs run the lanczos model (set per tier through ``STREAMUP_TIER_<TIER>_MODEL``, as an operator would)
on the shared 48-frame 160x90 clip; jobs that must last seconds read their input from a slow local HTTP
server instead of burning CPU. Queues use 2 s visibility timeouts and the workers 1 s long polls so that
retries, redrives and heartbeats happen within seconds.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import media
from tests.media import probe
from tests.worker.conftest import Aws, SlowFiles, WorkerProcess, final
from tests.worker.test_jobs import INVALID

QUICK = media("sr_input_x4_160x90.mkv")  # 48 frames, 160x90
QUICK_FRAMES = 48
VISIBILITY_S = 2


def job(job_id: str, **fields: Any) -> dict[str, Any]:
    return {"jobId": job_id, **fields}


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["status"] for e in events]


def assert_in_order(events: list[dict[str, Any]]) -> None:
    """RUNNING, PROGRESS in rising 5 % steps, SUCCEEDED last; progress never goes back."""
    names = statuses(events)
    assert names[0] == "RUNNING" and names[-1] == "SUCCEEDED", names
    assert set(names[1:-1]) <= {"PROGRESS"}, names
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[0] == 0 and progress[-1] == 100, progress
    steps = [e["progress"] for e in events if e["status"] == "PROGRESS"]
    assert len(steps) == len(set(steps)) and all(p % 5 == 0 for p in steps), steps


def when(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def new_key(suffix: str = ".mkv") -> str:
    return f"in/{uuid.uuid4().hex[:10]}{suffix}"


@pytest.fixture(scope="module")
def cpu_queue(aws: Aws) -> Iterator[tuple[str, str, list[WorkerProcess]]]:
    """The CPU fleet's queue (with a dead-letter queue after 2 receives) and two workers sharing it."""
    url, dlq = aws.queue(VISIBILITY_S, max_receives=2)
    assert dlq is not None
    workers = [WorkerProcess(aws.env(url)) for _ in range(2)]
    try:
        for w in workers:
            w.ready()
        yield url, dlq, workers
    finally:
        for w in workers:
            assert w.stop() == 0, w.log()


@pytest.fixture(scope="module")
def gpu_queue(aws: Aws) -> Iterator[tuple[str, WorkerProcess]]:
    """The GPU fleet's queue and one worker (this machine has no CUDA) running two jobs at once."""
    url, _ = aws.queue(VISIBILITY_S)
    worker = WorkerProcess(aws.env(url), "--concurrency", "2")
    try:
        yield url, worker.ready()
    finally:
        assert worker.stop() == 0, worker.log()


@pytest.fixture(scope="module")
def slow() -> Iterator[SlowFiles]:
    """QUICK over a slow link: ``quick.mkv`` takes about 5 s to read, ``brisk.mkv``
    3 s, ``steady.mkv`` 8 s, ``crawl.mkv`` 40 s (its 128 kB range ends 16 s in)."""
    server = SlowFiles(
        {"quick.mkv": (QUICK, 100_000), "brisk.mkv": (QUICK, 150_000), "steady.mkv": (QUICK, 60_000),
         "crawl.mkv": (QUICK, 12_000)}
    )
    yield server
    server.close()


def test_happy_path_on_both_queues(
    aws: Aws,
    cpu_queue: tuple[str, str, list[WorkerProcess]],
    gpu_queue: tuple[str, WorkerProcess],
    tmp_path: Path,
) -> None:
    cpu_url, _, cpu_workers = cpu_queue
    gpu_url, _ = gpu_queue
    key = aws.put(new_key(), QUICK)
    stem = key[: -len(".mkv")]
    sent = {  # job id: (queue, message, expected output key, scale)
        "basic-1": (
            cpu_url,
            job("basic-1", inputKey=key, parameters={"device": "cpu", "scale_factor": 2}),
            f"{stem}_basic_x2.mkv",
            2,
        ),
        "standard-1": (
            cpu_url,
            job("standard-1", inputKey=key, parameters={"device": "cpu", "scale_factor": "4"}),
            f"{stem}_standard_x4.mkv",
            4,
        ),
        "premium-1": (
            gpu_url,
            job(
                "premium-1",
                inputUri=f"s3://{aws.bucket}/{key}",
                parameters={"device": "gpu", "scale_factor": 2},
            ),
            f"{stem}_premium_x2.mkv",
            2,
        ),
        "pro-1": (
            gpu_url,
            job("pro-1", inputKey=key, outputKey="out/pro-1.mp4", parameters={"tier": "pro"}),
            "out/pro-1.mp4",
            4,
        ),
    }
    for queue_url, message, _, _ in sent.values():
        aws.send(queue_url, message)
    for job_id, (_, _, output, scale) in sent.items():
        events = aws.wait(job_id, final)
        assert_in_order(events)
        done = events[-1]
        assert done["outputUri"] == f"s3://{aws.bucket}/{output}"
        assert (done["frames"], done["deviceUsed"]) == (QUICK_FRAMES, "cpu") and done["seconds"] > 0
        assert aws.s3.head_object(Bucket=aws.bucket, Key=output)["Metadata"]["job-id"] == job_id
        local = tmp_path / Path(output).name
        aws.s3.download_file(aws.bucket, output, str(local))
        video = probe.video(local)
        assert (video["width"], video["height"]) == (160 * scale, 90 * scale)
    assert aws.counts(cpu_url) == (0, 0) and aws.counts(gpu_url) == (0, 0)
    assert aws.uploads() == []
    port = cpu_workers[0].port
    assert http_get(port, "/healthz") == (200, "ok\n") and http_get(port, "/readyz") == (200, "ready\n")


def test_invalid_jobs_fail_once_and_are_never_retried(
    aws: Aws,
    cpu_queue: tuple[str, str, list[WorkerProcess]],
) -> None:
    url, dlq, _ = cpu_queue
    not_video = aws.put(new_key(".mp4"), media("bad_text.mp4"))
    taken = aws.put(new_key(), QUICK)
    aws.s3.put_object(
        Bucket=aws.bucket, Key="out/taken.mp4", Body=b"someone else's", Metadata={"job-id": "other"}
    )
    expected: dict[str | None, list[str]] = {None: []}
    for name, message, _ in INVALID:
        named = message.get("jobId") == "j"  # the others name no usable id: their events carry null
        if named:
            message = {**message, "jobId": f"bad-{name}"}
        expected.setdefault(f"bad-{name}" if named else None, []).append("INVALID_JOB")
        aws.send(url, message)
    aws.send(url, "this is not JSON")
    expected[None].append("INVALID_JOB")
    broken = {
        "bad-missing-input": (
            {"inputKey": "in/nothing-here.mp4", "parameters": {"tier": "basic"}},
            "INPUT_UNUSABLE",
        ),
        "bad-not-a-video": ({"inputKey": not_video, "parameters": {"tier": "basic"}}, "INPUT_UNUSABLE"),
        "bad-output-taken": (
            {"inputKey": taken, "outputKey": "out/taken.mp4", "parameters": {"tier": "basic"}},
            "OUTPUT_EXISTS",
        ),
    }
    for job_id, (fields, code) in broken.items():
        aws.send(url, job(job_id, **fields))
        expected[job_id] = [code]
    for job_id, codes in expected.items():
        count = len(codes)
        aws.wait(job_id, lambda events, n=count: final(events, n))
    time.sleep(2 * VISIBILITY_S + 1)  # a message that was not deleted would be back by now
    for job_id, codes in expected.items():
        events = aws.of(job_id)
        failed = [e for e in events if e["status"] == "FAILED"]
        assert len(failed) == len(events) - statuses(events).count("RUNNING") == len(codes), events
        assert sorted(e["error"]["code"] for e in failed) == sorted(codes)
        assert all(e["error"]["permanent"] for e in failed), failed
    assert aws.counts(url) == (0, 0) and aws.counts(dlq) == (0, 0)
    assert aws.s3.get_object(Bucket=aws.bucket, Key="out/taken.mp4")["Body"].read() == b"someone else's"
    assert aws.uploads() == []


def test_a_duplicate_of_a_finished_job_does_no_work(
    aws: Aws,
    cpu_queue: tuple[str, str, list[WorkerProcess]],
) -> None:
    url, _, _ = cpu_queue
    key = aws.put(new_key(), QUICK)
    message = job("dup-1", inputKey=key, outputKey="out/dup-1.mkv", parameters={"tier": "basic"})
    aws.send(url, message)
    first = aws.wait("dup-1", final)[-1]
    served, etag = aws.counter.served(key), aws.s3.head_object(Bucket=aws.bucket, Key="out/dup-1.mkv")["ETag"]
    assert first["status"] == "SUCCEEDED" and "duplicate" not in first and served > 0
    aws.send(url, message)  # SQS delivers a message at least once: here is the second time
    events = aws.wait("dup-1", lambda e: final(e, 2))
    again = events[-1]
    assert (again["status"], again["duplicate"], again["outputUri"]) == (
        "SUCCEEDED",
        True,
        first["outputUri"],
    )
    assert again["deviceUsed"] == "cpu" and again["frames"] is None
    assert statuses(events).count("RUNNING") == 1  # no second run...
    assert aws.counter.served(key) == served  # ...not one byte of the input read again...
    assert aws.s3.head_object(Bucket=aws.bucket, Key="out/dup-1.mkv")["ETag"] == etag  # ...output untouched
    assert aws.counts(url) == (0, 0)


def test_two_workers_on_one_job_publish_once(
    aws: Aws, cpu_queue: tuple[str, str, list[WorkerProcess]], slow: SlowFiles
) -> None:
    url, _, workers = cpu_queue
    message = job(
        "twice-1", inputUri=slow.url("quick.mkv"), outputKey="out/twice-1.mkv", parameters={"tier": "basic"}
    )
    aws.send(url, message)
    aws.send(url, message)  # Spring sent it twice: both copies are taken at once, one by each worker
    events = aws.wait("twice-1", lambda e: final(e, 2))
    assert statuses(events).count("RUNNING") == 2  # both started (neither output existed yet)...
    done = [e for e in events if e["status"] == "SUCCEEDED"]
    assert len(done) == 2 and sum(1 for e in done if e.get("duplicate")) == 1  # ...one published
    records = [r for w in workers for r in w.jobs() if r.get("job") == "twice-1"]
    assert sorted(r["status"] for r in records) == ["duplicate", "succeeded"]
    assert [
        o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="out/twice-1")["Contents"]
    ] == ["out/twice-1.mkv"]
    assert aws.uploads() == []  # the loser's upload was aborted, not left open
    assert aws.counts(url) == (0, 0)


def test_a_job_longer_than_the_visibility_timeout_is_done_once(
    aws: Aws, cpu_queue: tuple[str, str, list[WorkerProcess]], slow: SlowFiles
) -> None:
    url, _, _ = cpu_queue
    aws.send(
        url,
        job(
            "long-1", inputUri=slow.url("steady.mkv"), outputKey="out/long-1.mkv",
            parameters={"tier": "basic"}
        ),
    )
    events = aws.wait("long-1", final)
    assert_in_order(events)
    first, last = events[0], events[-1]
    assert first["attempt"] == 1
    took = (when(last) - when(first)).total_seconds()
    assert took >= 2 * VISIBILITY_S  # the other idle worker would have taken it without the heartbeat
    time.sleep(VISIBILITY_S + 1)
    assert statuses(aws.of("long-1")).count("RUNNING") == 1 and aws.counts(url) == (0, 0)


def test_a_gpu_job_on_a_cpu_only_worker_runs_on_the_cpu(
    aws: Aws, gpu_queue: tuple[str, WorkerProcess], tmp_path: Path
) -> None:
    url, worker = gpu_queue
    clip = tmp_path / "tiny.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x36:rate=8:duration=1",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            str(clip),
        ],
        check=True,
    )
    key = aws.put(new_key(".mp4"), clip)
    aws.send(
        url,
        job(
            "gpu-on-cpu",
            inputKey=key,
            parameters={"device": "gpu", "scale_factor": 2, "model": "realesr-animevideov3"},
        ),
    )
    done = aws.wait("gpu-on-cpu", final)[-1]
    assert (done["status"], done["deviceUsed"], done["frames"]) == ("SUCCEEDED", "cpu", 8)
    head = aws.s3.head_object(Bucket=aws.bucket, Key=done["outputUri"].split("/", 3)[3])
    assert head["Metadata"]["model"] == "realesr-animevideov3" and head["Metadata"]["device-used"] == "cpu"
    assert "no CUDA device available; running on the CPU" in worker.log()


def test_a_transient_failure_is_retried_then_dead_lettered(
    aws: Aws,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    url, dlq = aws.queue(VISIBILITY_S, max_receives=2)
    assert dlq is not None
    key = aws.put(new_key(), QUICK)
    # One attempt per S3 call (AWS_MAX_ATTEMPTS): a failing upload fails at once; two messages, then exit.
    worker = start_worker(aws.env(url, AWS_MAX_ATTEMPTS="1"), "--max-jobs", "2").ready()
    aws.counter.fail_uploads = True  # every UploadPart answers 500: the store is broken, not the job
    try:
        aws.send(url, job("flaky-1", inputKey=key, outputKey="out/flaky-1.mkv", parameters={"tier": "basic"}))
        events = aws.wait("flaky-1", lambda e: final(e, 2))
        assert worker.proc.wait(30) == 0  # --max-jobs 2: both deliveries handled, then a clean exit
    finally:
        aws.counter.fail_uploads = False
    failed = [e for e in events if e["status"] == "FAILED"]
    assert (
        statuses(events).count("RUNNING") == 2
        and [e["error"]["code"] for e in failed] == ["OUTPUT_FAILED"] * 2
    )
    assert [e["error"]["permanent"] for e in failed] == [False, True]
    assert "dead-letter" in failed[1]["error"]["message"]
    assert not aws.exists("out/flaky-1.mkv") and aws.uploads() == []
    deadline = time.monotonic() + 30
    while aws.counts(dlq)[0] == 0:  # SQS moves it at the next receive after its backoff
        assert time.monotonic() < deadline, aws.counts(url)
        aws.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert aws.counts(dlq) == (1, 0) and aws.counts(url) == (0, 0)
    body = aws.sqs.receive_message(QueueUrl=dlq)["Messages"][0]["Body"]
    assert json.loads(body)["jobId"] == "flaky-1"


def test_sigterm_drains_what_fits_and_cancels_the_rest(
    aws: Aws, start_worker: Callable[..., WorkerProcess], slow: SlowFiles
) -> None:
    """Two jobs run when SIGTERM comes: the one that fits in --drain-seconds finishes and is deleted; the
    other is cancelled (no object, no open upload) and its message is visible again at once; exit 0."""
    url, _ = aws.queue(30)  # a message left invisible would stay so for 30 s
    drain = 12
    worker = start_worker(aws.env(url), "--concurrency", "2", "--drain-seconds", str(drain)).ready()
    port = worker.port
    for name, clip in (("drain-fits", "brisk.mkv"), ("drain-cut", "crawl.mkv")):
        aws.send(
            url, job(name, inputUri=slow.url(clip), outputKey=f"out/{name}.mkv", parameters={"tier": "basic"})
        )
    for name in ("drain-fits", "drain-cut"):
        aws.wait(name, lambda e: "RUNNING" in statuses(e))
    t0 = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_for(lambda r: r.get("event") == "signal")
    assert http_get(port, "/readyz") == (503, "draining\n")
    aws.wait("drain-fits", final)  # finishes during the drain...
    deadline = time.monotonic() + drain
    while len(aws.uploads()) != 1:  # ...while drain-cut still has its output's multipart upload open
        assert time.monotonic() < deadline, aws.uploads()
        time.sleep(0.2)
    assert worker.stop() == 0, worker.log()
    # the cancelled job unwinds once its current read returns (at most one range of the slow link)
    assert time.monotonic() - t0 < drain + 15
    # drain-cut was surely running at SIGTERM; on a loaded machine the brisk one may have finished already
    assert re.search(r"draining [12] running job\(s\)", worker.log()), worker.log()
    assert_in_order(aws.of("drain-fits"))
    assert aws.exists("out/drain-fits.mkv")
    assert set(statuses(aws.of("drain-cut"))) <= {"RUNNING", "PROGRESS"}  # neither SUCCEEDED nor FAILED
    assert not aws.exists("out/drain-cut.mkv") and aws.uploads() == []
    assert [r["job"] for r in worker.jobs("cancelled")] == ["drain-cut"]
    got = aws.sqs.receive_message(
        QueueUrl=url, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )
    assert [json.loads(m["Body"])["jobId"] for m in got.get("Messages", [])] == ["drain-cut"]
    # released as a fresh copy: the interrupted run does not count toward the dead-letter limit
    assert got["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert got["Messages"][0]["MessageAttributes"]["streamup-releases"]["StringValue"] == "1"
    assert aws.counts(url) == (0, 1)  # the one just received; drain-fits was deleted
