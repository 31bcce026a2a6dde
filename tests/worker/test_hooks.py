"""The worker's seams (``streamup.worker.hooks``), filled by test doubles in a real worker process
(``tests/worker/composed.py``) against moto's SQS and S3 on 127.0.0.1: an admission rule refuses a job
before anything is fetched, and busy hooks hear every change in the number of deliveries in hand."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tests.conftest import media
from tests.worker.conftest import Aws, SlowFiles, WorkerProcess, final

QUICK = media("sr_input_x4_160x90.mkv")  # 48 frames, 160x90
VISIBILITY_S = 2
COMPOSED = (sys.executable, "-m", "tests.worker.composed")


def test_an_admission_refusal_fails_once_before_any_fetch(
    aws: Aws, start_worker: Callable[..., WorkerProcess]
) -> None:
    url, dlq = aws.queue(VISIBILITY_S, max_receives=2)
    assert dlq is not None
    refused_key = aws.put("in/refused.mkv", QUICK)
    admitted_key = aws.put("in/admitted.mkv", QUICK)
    worker = start_worker(aws.env(url), command=COMPOSED).ready()
    aws.send(
        url,
        {
            "jobId": "refuse-1",
            "inputKey": refused_key,
            "outputKey": "out/refuse-1.mkv",
            "parameters": {"tier": "basic"},
        },
    )
    aws.send(
        url,
        {
            "jobId": "admit-1",
            "inputKey": admitted_key,
            "outputKey": "out/admit-1.mkv",
            "parameters": {"tier": "basic"},
        },
    )
    assert aws.wait("admit-1", final)[-1]["status"] == "SUCCEEDED"
    aws.wait("refuse-1", final)
    time.sleep(2 * VISIBILITY_S + 1)  # a message that was not deleted would be back by now
    events = aws.of("refuse-1")
    assert [e["status"] for e in events] == ["FAILED"], events  # no RUNNING: no work began
    error = events[0]["error"]
    assert (error["code"], error["permanent"]) == ("INVALID_JOB", True)
    assert error["message"] == "job refuse-1 refused by the test's admission rule"
    assert aws.counter.served(refused_key) == 0 and aws.counter.served(admitted_key) > 0
    assert not aws.exists("out/refuse-1.mkv") and aws.exists("out/admit-1.mkv")
    assert aws.counts(url) == (0, 0) and aws.counts(dlq) == (0, 0)
    asked = [r["job"] for r in worker.records if r.get("event") == "admit"]
    assert sorted(asked) == ["admit-1", "refuse-1"]  # each asked once
    assert worker.stop() == 0


def test_busy_hooks_hear_every_change_of_the_deliveries_in_hand(
    aws: Aws, start_worker: Callable[..., WorkerProcess]
) -> None:
    url, _ = aws.queue(VISIBILITY_S)
    slow = SlowFiles({"brisk.mkv": (QUICK, 150_000)})  # about 3 s each: both jobs overlap
    try:
        for name in ("busy-1", "busy-2"):
            aws.send(
                url,
                {
                    "jobId": name,
                    "inputUri": slow.url("brisk.mkv"),
                    "outputKey": f"out/{name}.mkv",
                    "parameters": {"tier": "basic"},
                },
            )
        worker = start_worker(aws.env(url), "--concurrency", "2", command=COMPOSED).ready()
        for name in ("busy-1", "busy-2"):
            assert aws.wait(name, final)[-1]["status"] == "SUCCEEDED"
        worker.wait_for(lambda r: r.get("event") == "busy" and r["running"] == 0)
        assert worker.stop() == 0
    finally:
        slow.close()
    heard = [r["running"] for r in worker.records if r.get("event") == "busy"]
    # both were taken by the first receive, then settled one by one: one call per change, 0 -> n -> 0
    assert heard == [1, 2, 1, 0], heard
    kinds = [r.get("event") for r in worker.records]
    assert kinds.index("busy") < kinds.index("admit")  # heard before any job began
    assert aws.counts(url) == (0, 0)
