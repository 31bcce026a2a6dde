"""The SQS calls the worker makes, on one queue each; only the worker's consumer thread calls them.

Configured like every AWS tool (and exactly like ``streamup.storage.s3``): the credential chain,
``AWS_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SQS`` for a local or compatible endpoint, botocore's
*standard* retries unless ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` say otherwise. Its 60 s read timeout
outlasts the longest long poll (20 s, the SQS maximum).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from streamup.errors import StreamupError
from streamup.storage import aws

#: SQS allows a message's visibility to be pushed out to at most 12 h after it was received.
MAX_VISIBILITY_S = 12 * 3600
Errors = aws.ERRORS


class QueueError(StreamupError):
    """A queue cannot be used at start (wrong URL, no permission, endpoint unreachable)."""


@dataclass
class Delivery:
    """One received message. ``visible_until`` (monotonic) is when SQS would hand it to someone else."""

    message_id: str
    receipt: str
    body: str
    receive_count: int
    visible_until: float


@dataclass(frozen=True)
class QueueSettings:
    """What the worker must know of its queue: the lease a receive gets, the redrive limit (None: no DLQ)."""

    visibility_timeout: int
    max_receive_count: int | None


def make_client() -> Any:
    """An SQS client configured exactly like streamup's S3 client (same environment, retries, timeouts)."""
    return aws.make_client("sqs")


class SqsQueue:
    """One queue. Methods raise botocore errors; the consumer decides what a failure means."""

    def __init__(self, client: Any, url: str) -> None:
        self.client, self.url = client, url
        self.fifo = url.endswith(".fifo")

    def settings(self) -> QueueSettings:
        """Read the queue's visibility timeout and redrive policy; ``QueueError`` if it cannot be used."""
        try:
            attrs = self.client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
        except Errors as e:
            raise QueueError(f"cannot use queue {self.url}: {describe(e)}") from None
        redrive = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else {}
        limit = redrive.get("maxReceiveCount")
        return QueueSettings(int(attrs.get("VisibilityTimeout", 30)), int(limit) if limit else None)

    def receive(self, count: int, wait_s: int, visibility_s: int) -> list[Delivery]:
        response = self.client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=max(1, min(10, count)), WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"])
        now = time.monotonic()
        return [Delivery(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""),
                         int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)), now + visibility_s)
                for m in response.get("Messages", [])]

    def delete(self, delivery: Delivery) -> None:
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=delivery.receipt)

    def set_visibility(self, delivery: Delivery, seconds: int) -> None:
        seconds = max(0, min(MAX_VISIBILITY_S, seconds))
        self.client.change_message_visibility(QueueUrl=self.url, ReceiptHandle=delivery.receipt,
                                              VisibilityTimeout=seconds)
        delivery.visible_until = time.monotonic() + seconds

    def send(self, body: dict[str, Any], group: str) -> None:
        """Send one JSON message; on a FIFO queue ``group`` keeps one job's events in order."""
        extra = {"MessageGroupId": group, "MessageDeduplicationId": uuid.uuid4().hex} if self.fifo else {}
        self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps(body), **extra)


describe = aws.describe
