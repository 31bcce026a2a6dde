"""Scale-in protection against moto's Auto Scaling in server mode on 127.0.0.1: a group with one instance,
the hook driven as the worker drives it (busy(1) ... busy(0)), and the outcome read back where Auto Scaling
keeps it (``describe_auto_scaling_instances`` → ``ProtectedFromScaleIn``). The hook's log records are what
an operator sees; they also count its API calls (one record per call, success or failure)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from streamup.config import Config
from streamup.errors import UsageError
from streamup.storage.aws import make_client
from streamup.worker.scalein import ScaleInProtection
from tests.storage.s3_endpoint import REGION, s3_env, serve


@dataclass
class Group:
    client: Any
    name: str
    instance: str

    def protected(self) -> bool:
        (found,) = self.client.describe_auto_scaling_instances(InstanceIds=[self.instance])[
            "AutoScalingInstances"]
        return bool(found["ProtectedFromScaleIn"])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serve() as server:
        yield server.endpoint


@pytest.fixture
def group(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Group:
    """A launch template and a group of one InService instance; the AWS environment a worker would have."""
    for name, value in {**s3_env(endpoint), "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    keys = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing"}
    ec2, autoscaling = boto3.client("ec2", **keys), boto3.client("autoscaling", **keys)
    name = f"streamup-cpu-{uuid.uuid4().hex[:8]}"
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=name,
                               LaunchTemplateData={"ImageId": image, "InstanceType": "t3.xlarge"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name}, MinSize=1, MaxSize=1,
        DesiredCapacity=1, AvailabilityZones=["us-east-1a"])
    instances = autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    (instance,) = [i["InstanceId"] for i in instances if i["AutoScalingGroupName"] == name]
    return Group(autoscaling, name, instance)


def wait_until(predicate: Callable[[], bool], timeout: float = 20) -> float:
    """Seconds until ``predicate`` held (generous: the machine is shared)."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "not within the timeout"
        time.sleep(0.05)
    return time.monotonic() - start


def calls(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "scale-in protection" in r.getMessage()]


def test_protected_while_busy_and_lifted_when_idle(group: Group, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamup")
    group.client.set_instance_protection(InstanceIds=[group.instance], AutoScalingGroupName=group.name,
                                         ProtectedFromScaleIn=True)  # left behind by a worker that crashed
    environ = {"STREAMUP_SCALE_IN_PROTECTION": "1", "STREAMUP_ASG_NAME": group.name,
               "STREAMUP_INSTANCE_ID": group.instance}
    hook = ScaleInProtection.from_config(Config.from_environ(environ), lift_after=1.0)  # 10 s by default
    assert hook is not None
    try:
        wait_until(lambda: not group.protected())  # a fresh worker starts idle: the stale protection goes
        hook(1)
        assert wait_until(group.protected) < 10
        for running in (2, 1, 0, 1, 2, 1):  # jobs end and start again within the lift delay: no calls
            hook(running)
        time.sleep(1.5)
        assert group.protected()
        hook(0)
        assert group.protected(), "lifted only after the idle delay"
        waited = wait_until(lambda: not group.protected())
        assert 0.5 < waited < 15
        hook(1)
        wait_until(group.protected)
    finally:
        hook.close()
    assert not group.protected(), "close() lifts it on the way out"
    off, on = f"scale-in protection off for {group.instance} in {group.name}", \
        f"scale-in protection on for {group.instance} in {group.name}"
    assert calls(caplog) == [off, on, off, on, off]


def test_an_api_error_is_logged_and_retried_never_raised(group: Group,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A group this instance is not in (a wrong STREAMUP_ASG_NAME): every attempt fails and says so, the hook
    still returns at once, and the real group's instance is untouched."""
    caplog.set_level(logging.INFO, logger="streamup")
    hook = ScaleInProtection(make_client("autoscaling"), "no-such-group", group.instance, retry_after=0.5)
    try:
        start = time.monotonic()
        for running in (1, 0, 1):
            hook(running)
        assert time.monotonic() - start < 0.05
        wait_until(lambda: len([m for m in calls(caplog) if m.startswith("cannot set")]) >= 2)  # retried
    finally:
        hook.close()
    assert not group.protected()
    assert all(m.startswith(("cannot set scale-in protection of", "cannot lift scale-in protection of"))
               for m in calls(caplog))


def test_configuration() -> None:
    assert ScaleInProtection.from_config(Config.from_environ({})) is None
    assert ScaleInProtection.from_config(Config.from_environ({"STREAMUP_SCALE_IN_PROTECTION": "0"})) is None
    with pytest.raises(UsageError, match="needs STREAMUP_ASG_NAME and STREAMUP_INSTANCE_ID"):
        ScaleInProtection.from_config(Config.from_environ({"STREAMUP_SCALE_IN_PROTECTION": "1",
                                                           "STREAMUP_ASG_NAME": "g"}))
