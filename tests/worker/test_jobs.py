"""The job message contract: the shipped examples and the parser agree with ``schemas/job.schema.json``, and
every refusal is a one-line ``InvalidJob`` naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from streamup.worker import jobs
from tests.conftest import REPO

BUCKET = "media-bucket"
JOB_SCHEMA = jsonschema.Draft202012Validator(json.loads((REPO / "schemas/job.schema.json").read_text()))
EXAMPLES = sorted((REPO / "examples/jobs").glob("*.json"))

#: Messages both the schema and the parser refuse (each with the words the refusal must contain). The worker
#: tests send these through a real queue too.
INVALID: list[tuple[str, Any, str]] = [
    ("no-job-id", {"inputKey": "a.mp4", "parameters": {"device": "cpu", "scale_factor": 2}}, "jobId"),
    ("bad-job-id", {"jobId": "a b", "inputKey": "a.mp4", "parameters": {"tier": "basic"}}, "jobId"),
    ("unknown-device", {"jobId": "j", "inputKey": "a.mp4",
                        "parameters": {"device": "tpu", "scale_factor": 2}}, "device"),
    ("unknown-tier", {"jobId": "j", "inputKey": "a.mp4", "parameters": {"tier": "gold"}}, "tier"),
    ("scale-3", {"jobId": "j", "inputKey": "a.mp4", "parameters": {"device": "cpu", "scale_factor": 3}},
     "scale_factor"),
    ("scale-text", {"jobId": "j", "inputKey": "a.mp4", "parameters": {"device": "gpu", "scale_factor": "x4"}},
     "scale_factor"),
    ("no-scale", {"jobId": "j", "inputKey": "a.mp4", "parameters": {"device": "cpu"}}, "scale_factor"),
    ("no-input", {"jobId": "j", "parameters": {"tier": "basic"}}, "inputKey or inputUri"),
    ("two-inputs", {"jobId": "j", "inputKey": "a.mp4", "inputUri": "s3://b/a.mp4",
                    "parameters": {"tier": "pro"}}, "not both"),
    ("ftp-input", {"jobId": "j", "inputUri": "ftp://host/a.mp4", "parameters": {"tier": "pro"}}, "inputUri"),
    ("avi-output", {"jobId": "j", "inputKey": "a.mp4", "outputKey": "b.avi", "parameters": {"tier": "pro"}},
     "output must end"),
    ("params-not-object", {"jobId": "j", "inputKey": "a.mp4", "parameters": [2]}, "parameters"),
]


def test_schemas_are_valid_json_schema() -> None:
    for path in (REPO / "schemas").glob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_match_the_schema_and_parse(path: Path) -> None:
    data = json.loads(path.read_text())
    JOB_SCHEMA.validate(data)
    job = jobs.parse(path.read_text(), BUCKET)
    assert job.id == str(data["jobId"])
    assert job.destination.startswith("s3://") and job.source != job.destination


def test_examples_mean_what_they_say() -> None:
    basic = jobs.parse((REPO / "examples/jobs/basic-cpu-2x.json").read_text(), BUCKET)
    assert (basic.tier, basic.device, basic.scale, basic.model) == ("basic", "cpu", 2, None)
    assert basic.source == f"s3://{BUCKET}/uploads/2026/12/clip.mp4"
    assert basic.destination == f"s3://{BUCKET}/uploads/2026/12/clip_basic_x2.mp4"
    standard = jobs.parse((REPO / "examples/jobs/standard-cpu-4x-string-scale.json").read_text(), BUCKET)
    assert (standard.tier, standard.scale, standard.destination) == (
        "standard", 4, f"s3://{BUCKET}/upscaled/lecture_4x.mkv")
    pro = jobs.parse((REPO / "examples/jobs/pro-gpu-4x-uris.json").read_text(), BUCKET)
    assert (pro.id, pro.tier, pro.source) == ("981245", "pro", "s3://customer-uploads/raw/trailer.mov")
    premium = jobs.parse((REPO / "examples/jobs/premium-tier-model-override.json").read_text(), BUCKET)
    options = premium.options()
    assert (options.device, options.scale, options.model) == ("gpu", 2, "RealESRGAN_x4plus_anime_6B")


@pytest.mark.parametrize(("name", "message", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_jobs_are_refused_by_schema_and_parser(name: str, message: Any, words: str) -> None:
    assert not JOB_SCHEMA.is_valid(message)
    with pytest.raises(jobs.InvalidJob, match=words) as refused:
        jobs.parse(json.dumps(message), BUCKET)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"text"', ""])
def test_a_body_that_is_not_an_object_is_invalid(body: str) -> None:
    with pytest.raises(jobs.InvalidJob, match="JSON"):
        jobs.parse(body, BUCKET)
    assert jobs.job_id_of(body) is None


@pytest.mark.parametrize(("scale", "expected"), [(2, 2), (4.0, 4), ("4", 4), (" 2 ", 2), ("2.0", 2)])
def test_java_scale_factors(scale: Any, expected: int) -> None:
    message = {"jobId": 7, "inputKey": "a.mov", "parameters": {"device": "cpu", "scale_factor": scale}}
    JOB_SCHEMA.validate(message)
    job = jobs.parse(json.dumps(message), BUCKET)
    assert (job.scale, job.destination) == (expected, f"s3://{BUCKET}/a_{job.tier}_x{expected}.mov")


def test_a_tier_that_contradicts_device_and_scale_is_refused() -> None:
    message = {"jobId": "j", "inputKey": "a.mp4",
               "parameters": {"tier": "pro", "device": "cpu", "scale_factor": 2}}
    with pytest.raises(jobs.InvalidJob, match="contradicts") as refused:
        jobs.parse(json.dumps(message), BUCKET)
    assert refused.value.job_id == "j"


def test_derived_output_keys() -> None:
    assert jobs.derived_key("s3://b/in/clip.MP4", "pro", 4) == "in/clip_pro_x4.mp4"
    assert jobs.derived_key("s3://b/in/clip.avi", "basic", 2) == "in/clip_basic_x2.mp4"  # not writable: mp4
    presigned = "https://host/v/clip.webm?X-Amz-Signature=1"
    assert jobs.derived_key(presigned, "basic", 2) == "v/clip_basic_x2.webm"
