"""The Kubernetes manifests: parsed, cross-referenced, and held to what the fleets need.

No cluster and no KEDA here, so what is checked is what a reader would check: every document is a named
Kubernetes object; kustomization.yaml applies every file; each fleet's ScaledJob scales on its own SQS queue
(KEDA ``aws-sqs-queue``) within the seed's bounds; a Job's pod outlives the worker's drain; probes hit the
worker's /healthz and /readyz on the port the worker is told to serve; the endpoint listens on 0.0.0.0; and
the container's arguments are accepted by the real ``streamup worker``. ``problems`` returns what is wrong
with a ScaledJob, so a test can also show that a broken one is caught. Core objects, and each ScaledJob's
Job template, are also held to the Kubernetes API schema (kubernetes-validate, strict).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.util import DEPLOY, drain_seconds, flag, worker_refusal

K8S = DEPLOY / "k8s"
#: The Kubernetes API the manifests are checked against (EKS supports it; the fields used are older).
KUBERNETES = "1.30"
#: The seed's fleets: ScaledJob name -> (queue URL key in the ConfigMap, min, max).
FLEETS = {"streamup-worker-cpu": ("CPU_QUEUE_URL", 1, 10), "streamup-worker-gpu": ("GPU_QUEUE_URL", 0, 5)}


def _documents() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, from every manifest but the kustomization."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path.name
            name = doc.get("metadata", {}).get("name")
            assert name, f"{path.name}: {doc['kind']} without metadata.name"
            found[(doc["kind"], name)] = doc
    return found


DOCS = _documents()
CONFIG = DOCS[("ConfigMap", "streamup-worker")]["data"]


def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom ConfigMaps, then env (which wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(DOCS[("ConfigMap", source["configMapRef"]["name"])]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = DOCS[("ConfigMap", ref["name"])]["data"][ref["key"]]
    return env


def problems(job: dict[str, Any]) -> list[str]:
    """Everything that keeps this ScaledJob from being a safe, correctly scaled fleet."""
    found: list[str] = []
    name = job["metadata"]["name"]
    queue_key, low, high = FLEETS[name]
    spec = job["spec"]
    if job["apiVersion"] != "keda.sh/v1alpha1" or job["kind"] != "ScaledJob":
        found.append(f"not a KEDA ScaledJob: {job['apiVersion']} {job['kind']}")
    if (spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)) != (low, high):
        found.append(f"bounds {spec.get('minReplicaCount')}-{spec.get('maxReplicaCount')}, want {low}-{high}")
    if spec.get("rollout", {}).get("strategy") != "gradual":
        found.append("rollout.strategy is not gradual: updating the ScaledJob would delete running Jobs")
    pod = spec["jobTargetRef"]["template"]["spec"]
    (container,) = pod["containers"]
    args = [str(a) for a in container["args"]]
    env = _env(container)
    triggers = spec.get("triggers", [])
    if [t.get("type") for t in triggers] != ["aws-sqs-queue"]:
        found.append(f"triggers {[t.get('type') for t in triggers]}, want one aws-sqs-queue")
    for trigger in triggers:
        meta = trigger.get("metadata", {})
        if env.get(meta.get("queueURLFromEnv", "")) != CONFIG[queue_key]:
            found.append(f"trigger watches {meta.get('queueURLFromEnv')!r}, not the {queue_key} queue")
        if env.get("SQS_QUEUE_URL") != CONFIG[queue_key]:
            found.append(f"worker reads {env.get('SQS_QUEUE_URL')!r}, not the {queue_key} queue")
        if meta.get("queueLength") != "1" or not meta.get("awsRegion"):
            found.append("trigger needs queueLength '1' (a Job per message) and awsRegion")
        if ("TriggerAuthentication", trigger.get("authenticationRef", {}).get("name")) not in DOCS:
            found.append("trigger's authenticationRef names no TriggerAuthentication here")
    if flag(args, "--max-jobs") != "1":
        found.append("a Job's worker must take one message (--max-jobs 1) and exit")
    if pod.get("restartPolicy") != "Never":
        found.append("restartPolicy must be Never: a restarted worker would take a second message")
    if pod.get("terminationGracePeriodSeconds", 30) <= drain_seconds(args):
        found.append(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds', 30)} does not "
                     f"exceed --drain-seconds {drain_seconds(args):g}: SIGKILL would cut the drain")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if str(ports.get("http")) != flag(args, "--metrics-port"):
        found.append(f"port 'http' {ports.get('http')} is not --metrics-port {flag(args, '--metrics-port')}")
    probes = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in probes.items():
        get = container.get(probe, {}).get("httpGet", {})
        if (get.get("path"), get.get("port")) != (path, "http"):
            found.append(f"{probe} must GET {path} on port http, has {get}")
    if env.get("STREAMUP_HTTP_HOST") != "0.0.0.0":
        found.append("STREAMUP_HTTP_HOST must be 0.0.0.0 for the kubelet's probes to reach the worker")
    gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    if (gpus == 1) != name.endswith("-gpu"):
        found.append(f"nvidia.com/gpu limit {gpus} on the {name} fleet")
    return found


def test_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize("name", sorted(FLEETS))
def test_fleet(name: str) -> None:
    assert problems(DOCS[("ScaledJob", name)]) == []


@pytest.mark.parametrize("name", sorted(FLEETS))
def test_worker_accepts_the_pod_arguments(name: str) -> None:
    args = DOCS[("ScaledJob", name)]["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["args"]
    assert "no job queue" in worker_refusal([str(a) for a in args[1:]])


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["jobTargetRef"]["template"]["spec"]


@pytest.mark.parametrize(("break_it", "complaint"), [
    (lambda j: _pod(j).update(terminationGracePeriodSeconds=600), "terminationGracePeriodSeconds 600"),
    (lambda j: j["spec"].update(maxReplicaCount=11), "bounds 1-11"),
    (lambda j: j["spec"]["triggers"][0].update(type="aws-cloudwatch"), "want one aws-sqs-queue"),
    (lambda j: j["spec"].pop("rollout"), "not gradual"),
    (lambda j: _pod(j)["containers"][0]["readinessProbe"]["httpGet"].update(path="/healthz"), "GET /readyz"),
    (lambda j: _pod(j)["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"].update(key="GPU_QUEUE_URL"),
     "not the CPU_QUEUE_URL queue"),
])
def test_problems_catches_a_broken_fleet(break_it: Any, complaint: str) -> None:
    job = copy.deepcopy(DOCS[("ScaledJob", "streamup-worker-cpu")])
    break_it(job)
    assert any(complaint in p for p in problems(job)), problems(job)


def _as_job(scaled_job: dict[str, Any]) -> dict[str, Any]:
    """A ScaledJob's jobTargetRef is a batch/v1 JobSpec: wrapped in a Job, the Kubernetes schema judges it."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": scaled_job["metadata"]["name"]},
            "spec": scaled_job["spec"]["jobTargetRef"]}


def test_objects_match_the_kubernetes_schema() -> None:
    """Strict: an unknown or misspelt field is an error, as `kubectl apply --validate=strict` makes it.
    KEDA's own kinds have no schema here; their Job templates do."""
    for (kind, _), doc in DOCS.items():
        if kind == "ScaledJob":
            kubernetes_validate.validate(_as_job(doc), KUBERNETES, strict=True)
        elif not doc["apiVersion"].startswith("keda.sh/"):
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_schema_catches_a_misspelt_field() -> None:
    job = _as_job(copy.deepcopy(DOCS[("ScaledJob", "streamup-worker-gpu")]))
    job["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 660
    with pytest.raises(kubernetes_validate.ValidationError, match="terminationGracePeriodSecond"):
        kubernetes_validate.validate(job, KUBERNETES, strict=True)


def test_the_objects_the_fleets_need_are_all_here() -> None:
    assert {kind for kind, _ in DOCS} == {"Namespace", "ServiceAccount", "ConfigMap", "TriggerAuthentication",
                                         "ScaledJob"}
    assert DOCS[("TriggerAuthentication", "streamup-sqs")]["spec"]["podIdentity"]["provider"] == "aws"


def test_keda_may_assume_the_workload_role() -> None:
    """``identityOwner: workload`` makes the KEDA operator assume the role on the pods' service account: the
    trust policy shipped beside the manifests admits both that service account and the operator's, through
    the cluster's OIDC provider (what AssumeRoleWithWebIdentity checks: audience and subject)."""
    auth = DOCS[("TriggerAuthentication", "streamup-sqs")]["spec"]["podIdentity"]
    assert auth == {"provider": "aws", "identityOwner": "workload"}
    assert "keda-trust-policy.json" in (K8S / "triggerauthentication.yaml").read_text()
    account = DOCS[("ServiceAccount", "streamup-worker")]
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    policy = json.loads((K8S / "keda-trust-policy.json").read_text())
    subjects = set()
    for statement in policy["Statement"]:
        assert (statement["Effect"], statement["Action"]) == ("Allow", "sts:AssumeRoleWithWebIdentity")
        assert statement["Principal"]["Federated"].endswith(":oidc-provider/OIDC_PROVIDER")
        condition = statement["Condition"]["StringEquals"]
        assert condition["OIDC_PROVIDER:aud"] == "sts.amazonaws.com"
        subjects.add(condition["OIDC_PROVIDER:sub"])
    assert subjects == {f"system:serviceaccount:{namespace}:{account['metadata']['name']}",
                        "system:serviceaccount:keda:keda-operator"}  # KEDA's Helm chart's defaults
