"""The consumer's heartbeat, proven: a job lasting more than five visibility timeouts runs once, on a queue
whose timeout is 2 s, with another idle worker polling the same queue all along (real ``streamup worker``
processes against moto's SQS and S3 on 127.0.0.1)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from tests.conftest import media
from tests.worker.conftest import Aws, SlowFiles, WorkerProcess, final

QUICK = media("sr_input_x4_160x90.mkv")  # 48 frames, 160x90, 471 kB
VISIBILITY_S = 2
#: The lease per heartbeat: twice the queue's timeout, so a renewal due at half a lease (2 s left) has a
#: second of slack over the consumer's 1 s poll on a loaded 2-core machine; far below the 30 s default,
#: so without renewals the idle worker would take the message 4 s into the job.
LEASE_S = 4


def when(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def test_heartbeats_keep_a_job_of_five_visibility_timeouts_on_one_worker(
    aws: Aws, start_worker: Callable[..., WorkerProcess]
) -> None:
    url, dlq = aws.queue(VISIBILITY_S, max_receives=2)
    assert dlq is not None
    slow = SlowFiles({"long.mkv": (QUICK, 35_000)})  # about 13.5 s to read: over 5 visibility timeouts
    try:
        workers = [  # the minimum lease set by flag on one, by environment on the other
            start_worker(aws.env(url), "--min-lease-seconds", str(LEASE_S)),
            start_worker(aws.env(url, STREAMUP_MIN_LEASE_SECONDS=str(LEASE_S))),
        ]
        for w in workers:
            assert w.ready().wait_for(lambda r: r.get("event") == "ready")["lease"] == LEASE_S
        aws.send(
            url,
            {
                "jobId": "beat-1",
                "inputUri": slow.url("long.mkv"),
                "outputKey": "out/beat-1.mkv",
                "parameters": {"tier": "basic", "model": "lanczos"},
            },
        )
        events = aws.wait("beat-1", final, timeout=180)
        took = (when(events[-1]) - when(events[0])).total_seconds()
        assert took >= 5 * VISIBILITY_S, events
        for w in workers:
            assert w.stop() == 0, w.log()
    finally:
        slow.close()
    events = aws.of("beat-1")
    statuses = [e["status"] for e in events]
    assert statuses.count("RUNNING") == 1 and statuses.count("SUCCEEDED") == 1, statuses
    assert "FAILED" not in statuses and not any(e.get("duplicate") for e in events)
    records = [r for w in workers for r in w.jobs() if r.get("job") == "beat-1"]
    assert [r["status"] for r in records] == ["succeeded"]  # one run, in one of the two workers
    listed = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="out/beat-1")["Contents"]
    assert [o["Key"] for o in listed] == ["out/beat-1.mkv"] and aws.uploads() == []
    assert aws.counts(url) == (0, 0) and aws.counts(dlq) == (0, 0)
