"""The leaser renews leases on its own timer: a worker whose every receive is held longer than half a lease
still keeps its running job, while another worker polls the same queue (real ``streamup worker`` processes;
moto's SQS and S3 on 127.0.0.1, the first worker's SQS calls through the soak's fault proxy).

With the renewals on the consumer's loop (before ``lease.py``) this test fails: each held receive let the
4 s lease run out, the worker's own next receives took its running message back, and SQS dead-lettered a
job that succeeded (DLQ (1, 0))."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.faults import FaultProxy
from tests.conftest import media
from tests.worker.conftest import Aws, SlowFiles, WorkerProcess, final

QUICK = media("sr_input_x4_160x90.mkv")  # 48 frames, 160x90, 471 kB
VISIBILITY_S = 2
LEASE_S = 4
#: Every receive of the first worker is held this long: more than half a lease, as a fault storm's slow
#: answers and botocore's retries held the soak's receives.
HELD_S = 3.5


def test_a_receive_held_past_half_a_lease_does_not_delay_renewals(
    aws: Aws, start_worker: Callable[..., WorkerProcess]
) -> None:
    url, dlq = aws.queue(VISIBILITY_S, max_receives=3)
    assert dlq is not None
    slow = SlowFiles({"long.mkv": (QUICK, 25_000)})  # about 19 s to read
    proxy = FaultProxy(int(aws.endpoint.rsplit(":", 1)[1]), hold_receives_s=HELD_S)
    try:
        lease = ("--min-lease-seconds", str(LEASE_S))
        held = start_worker(aws.env(url, AWS_ENDPOINT_URL_SQS=proxy.endpoint), "--concurrency", "2", *lease)
        held.ready()
        aws.send(url, {"jobId": "lease-1", "inputUri": slow.url("long.mkv"), "outputKey": "out/lease-1.mkv",
                       "parameters": {"tier": "basic", "model": "lanczos"}})
        aws.wait("lease-1", lambda events: any(e["status"] == "RUNNING" for e in events))
        other = start_worker(aws.env(url), *lease).ready()  # polls directly, idle all along
        events = aws.wait("lease-1", final, timeout=180)
        assert held.stop() == 0 and other.stop() == 0, held.log() + other.log()
    finally:
        proxy.close()
        slow.close()
    statuses = [e["status"] for e in aws.of("lease-1")]
    assert statuses.count("RUNNING") == 1 and statuses.count("SUCCEEDED") == 1, statuses
    assert [r["status"] for r in held.jobs() if r.get("job") == "lease-1"] == ["succeeded"]
    assert other.jobs() == [], other.log()  # the job never reached the other worker
    assert events[-1]["status"] == "SUCCEEDED" and not events[-1].get("duplicate")
    assert aws.counts(url) == (0, 0) and aws.counts(dlq) == (0, 0)
