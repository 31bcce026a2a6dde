"""The AWS helper shared by the transports: one client per environment, reused (building one takes seconds
on a busy machine), and a new one as soon as the environment points elsewhere."""

from __future__ import annotations

import pytest

from streamup.storage.aws import shared_client
from tests.storage.conftest import S3


def test_a_client_is_shared_until_the_environment_changes(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    first = shared_client()
    assert shared_client() is first
    assert first.meta.endpoint_url == s3.endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    moved = shared_client()
    assert moved is not first and moved.meta.endpoint_url == "http://127.0.0.1:9"
    assert shared_client("sqs") is not moved and shared_client("sqs").meta.service_model.service_name == "sqs"
