"""The EC2 fleet template and the worker's IAM policy.

``cfn-lint`` judges the template against CloudFormation's resource schemas (property names, types, enums,
references); it runs once over the real template and a copy with one dangling reference, to show that it
can fail. The rest checks what the schema cannot: the seed's instance types and bounds, a dead-letter queue
behind each job queue, backlog-per-instance target tracking on the right queue and group, and a termination
hook that outlasts the systemd unit's stop timeout. deploy/iam-policy.json (for workers outside this stack)
must grant what the stack's role grants.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from streamup import config
from tests.deploy.util import DEPLOY, WORKER_UNIT, service_section

TEMPLATE = DEPLOY / "aws" / "streamup-fleet.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
#: group resource -> (instance type, min, max, job queue resource): the seed's fleets.
FLEETS = {"CpuGroup": ("t3.xlarge", 1, 10, "CpuQueue"), "GpuGroup": ("g4dn.xlarge", 0, 5, "GpuQueue")}


def _template() -> dict[str, Any]:
    template, errors = decode(str(TEMPLATE))
    assert not errors and template is not None, errors
    return template


RESOURCES = _template()["Resources"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in RESOURCES.items() if r["Type"] == kind}


def test_cfn_lint_passes_and_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("AutoScalingGroupName: !Ref GpuGroup",
                                                   "AutoScalingGroupName: !Ref GpuGroupp", 1))
    run = subprocess.run([str(CFN_LINT), "--format", "json", str(TEMPLATE), str(broken)],
                         capture_output=True, text=True, timeout=120)
    findings = json.loads(run.stdout)
    assert [f for f in findings if f["Filename"] == str(TEMPLATE)] == []
    assert any(f["Filename"] == str(broken) and "GpuGroupp" in f["Message"] for f in findings), findings


def test_groups_are_the_seed_fleets() -> None:
    groups = _of_type("AWS::AutoScaling::AutoScalingGroup")
    assert set(groups) == set(FLEETS)
    for name, (instance_type, low, high, _) in FLEETS.items():
        group = groups[name]
        template = RESOURCES[group["LaunchTemplate"]["LaunchTemplateId"]["Ref"]]["Properties"]
        assert template["LaunchTemplateData"]["InstanceType"] == instance_type
        assert (int(group["MinSize"]), int(group["MaxSize"])) == (low, high), name
        assert "GroupInServiceInstances" in group["MetricsCollection"][0]["Metrics"], "the backlog divisor"


def test_scale_in_waits_for_the_drain() -> None:
    """A terminating instance is held until the worker stopped (the unit's TimeoutStopSec at the most)."""
    stop_timeout = float(service_section(WORKER_UNIT.read_text())["TimeoutStopSec"])
    for name in FLEETS:
        group = RESOURCES[name]["Properties"]
        (hook,) = group["LifecycleHookSpecificationList"]
        assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
        assert hook["HeartbeatTimeout"] > stop_timeout
        user_data = RESOURCES[group["LaunchTemplate"]["LaunchTemplateId"]["Ref"]]["Properties"][
            "LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
        assert f"STREAMUP_LIFECYCLE_HOOK={hook['LifecycleHookName']}" in user_data
        assert f"STREAMUP_ASG_NAME={group['AutoScalingGroupName']['Fn::Sub']}" in user_data
    watcher = (DEPLOY / "aws" / "lifecycle-watch.sh").read_text()
    for variable in ("STREAMUP_ASG_NAME", "STREAMUP_LIFECYCLE_HOOK", "AWS_REGION"):
        assert f'"${variable}"' in watcher, f"lifecycle-watch.sh does not use {variable}"


def test_job_queues_have_dead_letter_queues() -> None:
    queues = _of_type("AWS::SQS::Queue")
    for _, _, _, queue in FLEETS.values():
        redrive = queues[queue]["RedrivePolicy"]
        dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert dlq in queues and "RedrivePolicy" not in queues[dlq]
        assert 1 < redrive["maxReceiveCount"] <= 10
        assert queues[queue]["VisibilityTimeout"] >= 60
    assert "StatusQueue" in queues


def test_target_tracking_on_backlog_per_instance() -> None:
    policies = [p for p in _of_type("AWS::AutoScaling::ScalingPolicy").values()
                if p["PolicyType"] == "TargetTrackingScaling"]
    by_group = {p["AutoScalingGroupName"]["Ref"]: p for p in policies}
    assert set(by_group) == set(FLEETS)
    for group, (_, _, _, queue) in FLEETS.items():
        metrics = by_group[group]["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
        stats = {m["Id"]: m["MetricStat"]["Metric"] for m in metrics if "MetricStat" in m}
        (returned,) = [m for m in metrics if m["ReturnData"]]
        watched = {(s["MetricName"], s["Dimensions"][0]["Value"].get("Ref")
                    or s["Dimensions"][0]["Value"]["Fn::GetAtt"][0]) for s in stats.values()}
        assert watched == {("ApproximateNumberOfMessagesVisible", queue),
                           ("ApproximateNumberOfMessagesNotVisible", queue),
                           ("GroupInServiceInstances", group)}
        divisor = next(i for i, s in stats.items() if s["MetricName"] == "GroupInServiceInstances")
        assert f"/ {divisor}" in returned["Expression"]
        # the target is the jobs one instance runs at once: the same parameter as its workers' --concurrency
        target = by_group[group]["TargetTrackingConfiguration"]["TargetValue"]["Ref"]
        launch = RESOURCES[RESOURCES[group]["Properties"]["LaunchTemplate"]["LaunchTemplateId"]["Ref"]]
        assert f"--concurrency ${{{target}}}" in launch["Properties"]["LaunchTemplateData"]["UserData"][
            "Fn::Base64"]["Fn::Sub"]


def _actions(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Sid -> actions (an Action may be one string or a list)."""
    return {s["Sid"]: {s["Action"]} if isinstance(s["Action"], str) else set(s["Action"]) for s in statements}


def test_iam_policy_matches_the_stack_role() -> None:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    (inline,) = RESOURCES["WorkerRole"]["Properties"]["Policies"]
    role = _actions(inline["PolicyDocument"]["Statement"])
    granted = _actions(policy["Statement"])
    assert {sid: role[sid] for sid in granted} == granted
    every = set().union(*granted.values())
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:SendMessage",
            "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"} <= every


def test_busy_instances_are_protected_from_scale_in() -> None:
    """Each fleet's workers protect their own instance while busy (streamup/worker/scalein.py): the user
    data turns it on, bootstrap.sh hands the worker its instance id, and the role may set protection on this
    stack's groups only."""
    (inline,) = RESOURCES["WorkerRole"]["Properties"]["Policies"]
    (statement,) = [s for s in inline["PolicyDocument"]["Statement"] if s["Sid"] == "ProtectBusyInstance"]
    assert statement["Action"] == ["autoscaling:SetInstanceProtection"]
    scope = ":autoScalingGroup:*:autoScalingGroupName/${AWS::StackName}-*"
    assert statement["Resource"]["Fn::Sub"].endswith(scope)
    for name in FLEETS:
        group = RESOURCES[name]["Properties"]
        assert group["AutoScalingGroupName"]["Fn::Sub"].startswith("${AWS::StackName}-")
        user_data = RESOURCES[group["LaunchTemplate"]["LaunchTemplateId"]["Ref"]]["Properties"][
            "LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
        assert f"{config.SCALE_IN_PROTECTION}=1" in user_data and f"{config.ASG_NAME}=" in user_data
    bootstrap = (DEPLOY / "aws" / "bootstrap.sh").read_text()
    assert f'"{config.INSTANCE_ID}=$(curl' in bootstrap and "latest/meta-data/instance-id" in bootstrap
