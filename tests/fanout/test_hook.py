"""Fan-out through real ``streamup worker`` processes on moto SQS + S3 (127.0.0.1): three workers share one
job's segments, one is SIGKILLed mid-segment, the job still succeeds with at most one segment redone; the
parent sent again after success does no work.

The source is served over a slowed HTTP link (tests.worker's ``SlowFiles``, 150 kB/s) so that every segment
lasts a second or more while costing the two CPUs almost nothing: the victim is killed as soon as it logs
that its segment started, so it is always mid-segment.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from streamup.config import Config
from streamup.engine.base import FrameUpscaler
from streamup.fanout import hook as fanout
from streamup.fanout.inprocess import open_plan
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler
from streamup.worker import jobs
from streamup.worker.hooks import JobContext
from tests.fanout import probe
from tests.storage.conftest import S3, s3, s3_server  # noqa: F401  # in-process moto S3
from tests.worker.conftest import (  # noqa: F401  # module fixture
    Aws,
    SlowFiles,
    WorkerProcess,
    aws,
    final,
    start_worker,  # the fixture, by name
)

SEGMENTS = 3  # bframes.mp4: 3 s with a keyframe every second, cut into 1 s segments


@pytest.fixture
def slow(clips: dict[str, Path]) -> Iterator[SlowFiles]:
    files = SlowFiles({"clip.mp4": (clips["bframes.mp4"], 150_000)})
    yield files
    files.close()


def _parent(job_id: str, url: str, key: str) -> dict[str, Any]:
    return {"jobId": job_id, "inputUri": url, "outputKey": key,
            "parameters": {"device": "cpu", "scale_factor": 2, "segmentSeconds": 1}}


def _segments(workers: list[WorkerProcess], status: str) -> list[dict[str, Any]]:
    return [r for w in workers for r in list(w.records)
            if r.get("event") == "segment" and r.get("status") == status]


def test_three_workers_survive_a_sigkill_and_a_resent_parent_does_no_work(
        aws: Aws, start_worker: Callable[..., WorkerProcess], slow: SlowFiles,  # noqa: F811
        clips: dict[str, Path], tmp_path: Path) -> None:
    queue, _ = aws.queue(visibility=3, max_receives=5)
    workers = [start_worker(aws.env(queue)) for _ in range(3)]
    for w in workers:
        w.ready()
    job = _parent("fan-kill", slow.url("clip.mp4"), "out/fan-kill.mp4")
    aws.send(queue, job)
    victim = next(w for w in _wait_any(workers, lambda r: r.get("event") == "segment"
                                       and r.get("status") == "started"))
    victim.proc.kill()  # SIGKILL mid-segment: no drain, its message comes back after the visibility timeout
    victim.proc.wait()

    events = aws.wait("fan-kill", final, timeout=120)
    statuses = [e["status"] for e in events]
    assert "RUNNING" in statuses and statuses[-1] == "SUCCEEDED" and statuses.count("SUCCEEDED") == 1
    assert "FAILED" not in statuses
    assert len(aws.uploads()) <= 1  # only the killed segment's upload (the lifecycle rule's to remove)
    started = _segments(workers, "started")
    # Only what the victim held is done again: it may have held two segments (two job threads).
    redone = len(_segments([victim], "started")) - len(_segments([victim], "done"))
    assert 1 <= redone <= 2 and len(started) == SEGMENTS + redone, started
    out = tmp_path / "out.mp4"
    out.write_bytes(aws.s3.get_object(Bucket=aws.bucket, Key="out/fan-kill.mp4")["Body"].read())
    assert probe.video_pts(out) == pytest.approx(probe.video_pts(clips["bframes.mp4"]), abs=0.001)
    assert probe.audio_md5(out) == probe.audio_md5(clips["bframes.mp4"])
    left = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="streamup-work/").get("Contents", [])
    assert left == []  # plan, segments, records and claim deleted after the stitch

    aws.send(queue, job)  # the parent again, after success: recognised by the output's job id
    again = aws.wait("fan-kill", lambda e: final(e, 2), timeout=60)
    assert again[-1]["status"] == "SUCCEEDED" and again[-1].get("duplicate") is True
    assert len(_segments(workers, "started")) == len(started)  # no segment ran again


def _wait_any(workers: list[WorkerProcess], predicate: Callable[[dict[str, Any]], bool],
              timeout: float = 90) -> Iterator[WorkerProcess]:
    """The workers with a log record matching ``predicate``, as soon as one has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [w for w in workers if any(predicate(r) for r in list(w.records))]
        if hits:
            return iter(hits)
        time.sleep(0.05)
    raise AssertionError("no worker started a segment:\n" + "\n".join(w.log() for w in workers))


def test_a_permanent_segment_failure_fails_the_parent_once(s3: S3, clips: dict[str, Path]) -> None:  # noqa: F811
    src = s3.put("in/clip.mp4", clips["bframes.mp4"])
    body = {"jobId": "fan-fail", "inputUri": src, "outputUri": s3.uri("out/clip.mp4"),
            "parameters": {"device": "cpu", "scale_factor": 2, "segmentSeconds": 1}}
    job = jobs.parse(json.dumps(body), s3.bucket)
    options = UpscaleOptions(model="lanczos")
    plan, area, _ = open_plan(job.source, job.destination, options, Fraction(1))
    # the stored plan promises one frame more in each later segment than the source has there
    broken = dataclasses.replace(plan, segments=(plan.segments[0], *(
        dataclasses.replace(s, pts=(*s.pts, s.pts[-1] + 1)) for s in plan.segments[1:])))
    key = area.uri("plan.json").split("/", 3)[3]
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=json.dumps(broken.to_data()).encode())
    upscaler = build_upscaler(options)
    def deliver(index: int) -> fanout.Handled | None:
        segment = jobs.parse(json.dumps({**body, "segment": {"key": plan.key, "index": index}}), s3.bucket)
        context = JobContext(f"m{index}", options, lambda: upscaler, threading.Event(), (), Config())
        return fanout.handle(segment, context)

    outcomes = [deliver(i) for i in (1, 2, 1)]
    assert all(o is not None for o in outcomes)
    events = [o.event for o in outcomes if o is not None and o.event is not None]
    assert [e["status"] for e in events] == ["FAILED"]  # once, from the first failing segment
    assert events[0]["jobId"] == "fan-fail" and events[0]["error"]["permanent"] is True
    assert "segment 1" in events[0]["error"]["message"]


def test_a_parent_sent_again_mid_job_reuses_its_plan_and_finished_segments(
        s3: S3, clips: dict[str, Path]) -> None:  # noqa: F811
    src = s3.put("in/clip.mp4", clips["bframes.mp4"])
    body = {"jobId": "fan-again", "inputUri": src, "outputUri": s3.uri("out/clip.mkv"),
            "parameters": {"device": "cpu", "scale_factor": 2, "segmentSeconds": 1}}
    options = UpscaleOptions(model="lanczos", codec="ffv1")
    built: list[FrameUpscaler] = []

    def model() -> FrameUpscaler:
        built.append(build_upscaler(options))
        return built[-1]

    def deliver(message: dict[str, Any], message_id: str) -> fanout.Handled | None:
        context = JobContext(message_id, options, model, threading.Event(), (), Config())
        return fanout.handle(jobs.parse(json.dumps(message), s3.bucket), context)

    first = deliver(body, "parent-1")
    assert first is not None and first.event is not None and first.event["status"] == "RUNNING"
    assert built == []  # a parent is planned without its model
    segments = [m.body for m in first.sends]  # the worker's consumer sends them, not the hook
    assert sorted(m["segment"]["index"] for m in segments) == list(range(SEGMENTS))
    assert {m.group for m in first.sends} == {f"fan-again-{i}" for i in range(SEGMENTS)}
    done = deliver(dict(next(m for m in segments if m["segment"]["index"] == 0)), "seg-0")
    assert done is not None and done.event is not None and done.event["status"] == "PROGRESS"
    assert done.sends == () and len(built) == 1

    again = deliver(body, "parent-2")  # sent again while segments 1 and 2 are still queued
    assert again is not None and again.event is not None and again.event["reused"] == 1
    assert sorted(m.body["segment"]["index"] for m in again.sends) == [1, 2]  # segment 0 is not redone
