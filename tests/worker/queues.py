"""What the worker tests and ``benchmarks/worker_throughput.py`` share: clients and a bucket on the moto
endpoint, and emptying a status queue after the fact."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from tests.storage.s3_endpoint import REGION


def clients(endpoint: str, bucket_prefix: str) -> tuple[Any, Any, str]:
    """S3 and SQS clients for the moto endpoint (its test credentials) and a fresh bucket."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
    s3 = boto3.client("s3", endpoint_url=endpoint, **keys)
    bucket = f"{bucket_prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, boto3.client("sqs", endpoint_url=endpoint, **keys), bucket


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every JSON message now visible on ``url``, in arrival order, deleted as it is read."""
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies
