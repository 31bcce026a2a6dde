"""The soak's fault proxy (benchmarks/faults.py) in front of a real moto server: it forwards what it does not
break, breaks what it is told to in the way a client sees from a real store, and counts what it injected."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

from benchmarks.faults import KINDS, FaultProxy
from tests.storage.s3_endpoint import REGION, serve
from tests.worker.queues import clients


@pytest.fixture(scope="module")
def moto() -> Iterator[tuple[int, Any, Any, str]]:
    with serve() as server:
        s3, sqs, bucket = clients(server.endpoint, "faults")
        s3.put_object(Bucket=bucket, Key="clip.bin", Body=b"x" * 300_000)
        yield int(server.endpoint.rsplit(":", 1)[1]), s3, sqs, bucket


def through(proxy: FaultProxy, service: str) -> Any:
    """A client of ``service`` via the proxy that tries once: every injected fault reaches the test."""
    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=10)
    return boto3.client(service, endpoint_url=proxy.endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=config)


def test_forwards_s3_and_sqs_unchanged_when_the_rate_is_zero(moto: tuple[int, Any, Any, str]) -> None:
    port, _, sqs, bucket = moto
    proxy = FaultProxy(port)
    try:
        s3 = through(proxy, "s3")
        assert s3.get_object(Bucket=bucket, Key="clip.bin")["Body"].read() == b"x" * 300_000
        assert s3.head_object(Bucket=bucket, Key="clip.bin")["ContentLength"] == 300_000
        s3.put_object(Bucket=bucket, Key="up.bin", Body=b"y" * 1000)
        q = sqs.create_queue(QueueName="faults-forward")["QueueUrl"]
        via = through(proxy, "sqs")
        via.send_message(QueueUrl=q, MessageBody="hello")
        received = via.receive_message(QueueUrl=q, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in received] == ["hello"]
        assert proxy.counts() == {**dict.fromkeys(KINDS, 0), "forwarded": 5}
    finally:
        proxy.close()
    assert moto[1].get_object(Bucket=bucket, Key="up.bin")["Body"].read() == b"y" * 1000


@pytest.mark.parametrize(("kind", "code"), [("503", "ServiceUnavailable"), ("slowdown", "SlowDown")])
def test_error_answers_are_what_s3_sends(moto: tuple[int, Any, Any, str], kind: str, code: str) -> None:
    port, _, _, bucket = moto
    proxy = FaultProxy(port, rate=1.0, kinds=(kind,))
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            through(proxy, "s3").get_object(Bucket=bucket, Key="clip.bin")
    finally:
        proxy.close()
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert proxy.counts()[kind] == 1


def test_a_reset_drops_the_connection_and_nothing_reaches_the_queue(moto: tuple[int, Any, Any, str]) -> None:
    port, _, sqs, _ = moto
    q = sqs.create_queue(QueueName="faults-reset")["QueueUrl"]
    proxy = FaultProxy(port, rate=1.0, kinds=("reset",))
    try:
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            through(proxy, "sqs").send_message(QueueUrl=q, MessageBody="lost")
    finally:
        proxy.close()
    assert proxy.counts()["reset"] == 1
    assert "Messages" not in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=0)  # injected before forwarding


def test_slow_answers_are_late_but_whole_and_storms_end(moto: tuple[int, Any, Any, str]) -> None:
    port, _, _, bucket = moto
    proxy = FaultProxy(port, kinds=("slow",), slow_s=0.6)
    try:
        s3 = through(proxy, "s3")
        proxy.storm(30, 1.0)
        t0 = time.monotonic()
        assert len(s3.get_object(Bucket=bucket, Key="clip.bin")["Body"].read()) == 300_000
        assert time.monotonic() - t0 >= 0.6
        proxy.storm(0, 1.0)  # over at once: back to the base rate (0)
        s3.head_object(Bucket=bucket, Key="clip.bin")
    finally:
        proxy.close()
    assert proxy.counts() == {**dict.fromkeys(KINDS, 0), "slow": 1, "forwarded": 2}


def test_long_polls_wait_and_one_message_reaches_one_poller(moto: tuple[int, Any, Any, str]) -> None:
    """Receives reach moto one short poll at a time: a long poll still waits its time on an empty queue,
    and a message sent while several workers poll is taken by exactly one of them."""
    port, _, sqs, _ = moto
    q = sqs.create_queue(QueueName="faults-serial")["QueueUrl"]
    proxy = FaultProxy(port)
    got: list[str] = []
    try:
        pollers = [through(proxy, "sqs") for _ in range(4)]
        t0 = time.monotonic()
        assert "Messages" not in pollers[0].receive_message(QueueUrl=q, WaitTimeSeconds=1)
        assert time.monotonic() - t0 >= 1.0

        def poll(c: Any) -> None:
            answer = c.receive_message(QueueUrl=q, WaitTimeSeconds=3, VisibilityTimeout=30)
            got.extend(m["Body"] for m in answer.get("Messages", []))

        threads = [threading.Thread(target=poll, args=(c,)) for c in pollers]
        for t in threads:
            t.start()
        time.sleep(0.5)
        sqs.send_message(QueueUrl=q, MessageBody="once")
        for t in threads:
            t.join()
    finally:
        proxy.close()
    assert got == ["once"]
