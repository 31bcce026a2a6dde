"""SQS as a ``JobQueue`` (``worker/queue.py``): the only worker module that speaks SQS.

Configured like every AWS tool (``streamup.storage.aws``: the credential chain, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SQS``, botocore's *standard* retries); its 60 s read timeout
outlasts the longest long poll (20 s, the SQS maximum). Every boto error becomes ``QueueUnavailable`` with
``aws.describe``'s wording, so the worker's logic never sees botocore.

A release must not count toward the redrive policy's ``maxReceiveCount``, but SQS counts every receive of a
message and offers no way to undo one. So ``release`` sends a fresh copy of the message (its receive count
starts again at 0), carrying how often it was released in the ``streamup-releases`` attribute, and then
deletes the old one. If the copy cannot be sent, the old message is made visible at once instead (that
receive then counts, as it did before releases were copied). If the delete fails after the copy went out,
two copies exist; the second is recognised as done by the output's job id, as any duplicate is.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from streamup.storage import aws
from streamup.worker.queue import Delivery, Message, QueueError, QueueSettings, QueueUnavailable

#: SQS allows a message's visibility to be pushed out to at most 12 h after it was received.
MAX_VISIBILITY_S = 12 * 3600
#: Message attribute of a released message's copy: how many times it was released before.
RELEASES = "streamup-releases"
#: The id of the original message a released copy stands for (``Delivery.origin``).
ORIGIN = "streamup-origin"


@dataclass(frozen=True)
class _Receipt:
    """SQS's handle of one receive, and the FIFO group a copy of the message must keep."""

    receipt: str
    group: str | None


class SqsQueue:
    """One SQS queue (job queue or status queue)."""

    def __init__(self, url: str, client: Any = None) -> None:
        self.client = client if client is not None else aws.make_client("sqs")
        self.name = url
        self.fifo = url.endswith(".fifo")

    def settings(self) -> QueueSettings:
        try:
            attrs = self.client.get_queue_attributes(
                QueueUrl=self.name, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])["Attributes"]
        except aws.ERRORS as e:
            raise QueueError(f"cannot use queue {self.name}: {aws.describe(e)}") from None
        redrive = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else {}
        limit = redrive.get("maxReceiveCount")
        return QueueSettings(int(attrs.get("VisibilityTimeout", 30)), int(limit) if limit else None)

    def receive(self, count: int, wait_s: int, lease_s: int) -> list[Delivery]:
        response = self._call("receive from", self.client.receive_message, QueueUrl=self.name,
                              MaxNumberOfMessages=max(1, min(10, count)), WaitTimeSeconds=wait_s,
                              VisibilityTimeout=max(0, min(MAX_VISIBILITY_S, lease_s)),
                              MessageSystemAttributeNames=["ApproximateReceiveCount", "MessageGroupId"],
                              MessageAttributeNames=[RELEASES, ORIGIN])
        visible_until = time.monotonic() + lease_s
        return [_delivery(m, visible_until) for m in response.get("Messages", [])]

    def extend(self, delivery: Delivery, seconds: int) -> None:
        self._call("change the visibility of", self.client.change_message_visibility, QueueUrl=self.name,
                   ReceiptHandle=delivery.handle.receipt,
                   VisibilityTimeout=max(0, min(MAX_VISIBILITY_S, seconds)))

    def release(self, delivery: Delivery) -> None:
        attributes = {RELEASES: {"DataType": "Number", "StringValue": str(delivery.releases + 1)},
                      ORIGIN: {"DataType": "String", "StringValue": delivery.identity}}
        try:
            self._send(delivery.body, delivery.handle.group or delivery.message_id,
                       MessageAttributes=attributes)
        except QueueUnavailable:
            self.extend(delivery, 0)  # this receive counts, but the job is not held back
            raise
        self.delete(delivery)

    def delete(self, delivery: Delivery) -> None:
        self._call("delete from", self.client.delete_message, QueueUrl=self.name,
                   ReceiptHandle=delivery.handle.receipt)

    def send(self, message: Message) -> None:
        self._send(json.dumps(message.body), message.group)

    def _send(self, body: str, group: str, **extra: Any) -> None:
        """On a FIFO queue ``group`` keeps one job's messages in order."""
        if self.fifo:
            extra.update(MessageGroupId=group, MessageDeduplicationId=uuid.uuid4().hex)
        self._call("send to", self.client.send_message, QueueUrl=self.name, MessageBody=body, **extra)

    def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except aws.ERRORS as e:
            raise QueueUnavailable(f"cannot {what} {self.name}: {aws.describe(e)}") from None


def _delivery(message: dict[str, Any], visible_until: float) -> Delivery:
    attributes = message.get("Attributes", {})
    ours = message.get("MessageAttributes", {})
    released = ours.get(RELEASES, {}).get("StringValue", "0")
    return Delivery(message["MessageId"], message.get("Body", ""),
                    int(attributes.get("ApproximateReceiveCount", 1)), visible_until,
                    _Receipt(message["ReceiptHandle"], attributes.get("MessageGroupId")),
                    int(released) if released.isdigit() else 0, ours.get(ORIGIN, {}).get("StringValue", ""))
