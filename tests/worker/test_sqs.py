"""SQS as the worker's ``JobQueue``: a release is a fresh copy, so drains never dead-letter a job (real
``streamup worker`` processes against moto's SQS and S3 on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamup.worker.sqs import SqsQueue
from tests.conftest import media
from tests.storage.s3_endpoint import s3_env
from tests.worker.conftest import Aws, SlowFiles, WorkerProcess, final

QUICK = media("sr_input_x4_160x90.mkv")  # 48 frames, 160x90, 471 kB
VISIBILITY_S = 2
RELEASES = 3  # one more than the queue's maxReceiveCount


def test_a_job_released_by_drain_again_and_again_is_never_dead_lettered(
    aws: Aws, start_worker: Callable[..., WorkerProcess]
) -> None:
    url, dlq = aws.queue(VISIBILITY_S, max_receives=2)
    assert dlq is not None
    slow = SlowFiles({"long.mkv": (QUICK, 30_000)})  # about 16 s to read: still running at each SIGTERM
    message = {
        "jobId": "release-1",
        "inputUri": slow.url("long.mkv"),
        "outputKey": "out/release-1.mkv",
        "parameters": {"tier": "basic"},
    }
    try:
        aws.send(url, message)
        released: list[int] = []
        for n in range(1, RELEASES + 1):  # scale-in, again and again: SIGTERM with no drain time
            worker = start_worker(aws.env(url), "--drain-seconds", "0").ready()
            aws.wait("release-1", lambda e, n=n: [x["status"] for x in e].count("RUNNING") == n, timeout=120)
            assert worker.stop() == 0, worker.log()
            assert [r["job"] for r in worker.jobs("cancelled")] == ["release-1"]
            released += [r["releases"] for r in worker.records if r.get("event") == "release"]
            assert aws.counts(dlq) == (0, 0)
        assert released == list(range(1, RELEASES + 1))
        last = start_worker(aws.env(url)).ready()
        events = aws.wait("release-1", final, timeout=180)
        assert last.stop() == 0, last.log()
    finally:
        slow.close()
    statuses = [e["status"] for e in events]
    assert statuses.count("SUCCEEDED") == 1 and "FAILED" not in statuses, statuses
    # every run was the first attempt as far as the redrive policy counts: none was held against the job
    assert [e["attempt"] for e in events if e["status"] == "RUNNING"] == [1] * (RELEASES + 1)
    assert aws.exists("out/release-1.mkv") and aws.uploads() == []
    assert aws.counts(url) == (0, 0) and aws.counts(dlq) == (0, 0)


def test_a_released_copy_keeps_the_identity_of_the_message_it_stands_for(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release sends a fresh copy (its receive count starts again), but the copy is the same message to
    whatever the original claimed: the fan-out's stitch claim names the message, and a stitch cancelled by a
    drain must be finished by the copy, not left to an owner that no longer exists."""
    for name, value in s3_env(aws.endpoint).items():
        monkeypatch.setenv(name, value)
    url, _ = aws.queue(VISIBILITY_S, max_receives=2)
    aws.send(url, {"jobId": "copy-1"})
    queue = SqsQueue(url)
    (first,) = queue.receive(1, 1, 30)
    assert (first.identity, first.releases) == (first.message_id, 0)
    queue.release(first)
    (copy,) = queue.receive(1, 1, 30)
    queue.release(copy)
    (again,) = queue.receive(1, 1, 30)
    assert again.message_id not in (first.message_id, copy.message_id)
    assert (again.identity, again.releases, again.receive_count) == (first.message_id, 2, 1)
    assert again.body == first.body
