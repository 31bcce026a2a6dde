"""The job message parser: the shipped examples match ``schemas/job.schema.json`` and mean what they say,
and what the schema cannot state (the corpus in test_contract.py holds both readings to one verdict)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from streamup.worker import jobs
from tests.conftest import REPO

BUCKET = "media-bucket"
JOB_SCHEMA = jsonschema.Draft202012Validator(json.loads((REPO / "schemas/job.schema.json").read_text()))
EXAMPLES = sorted((REPO / "examples/jobs").glob("*.json"))

#: The contract corpus's refused messages (name, message, words the refusal must contain): the worker tests
#: send these through a real queue too.
INVALID: list[tuple[str, Any, str]] = [
    (c["name"], c["message"], c["refusal"])
    for c in json.loads((REPO / "tests/worker/contract/messages.json").read_text())
    if c["verdict"] == "invalid" and "message" in c
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


def test_an_output_that_would_replace_its_input_is_refused() -> None:
    """Beyond what a schema can say: two spellings of one object."""
    message = {"jobId": "j", "inputKey": "/v/a.mp4", "outputUri": f"s3://{BUCKET}/v/a.mp4",
               "parameters": {"tier": "basic"}}
    JOB_SCHEMA.validate(message)
    with pytest.raises(jobs.InvalidJob, match="replace the input"):
        jobs.parse(json.dumps(message), BUCKET)


def test_segment_seconds_and_nulls_are_read_as_sent() -> None:
    params = {"tier": "basic", "model": None, "segmentSeconds": " 12.5"}
    message = {"jobId": 12.0, "inputKey": "a.mkv", "outputKey": None, "parameters": params}
    job = jobs.parse(json.dumps(message), BUCKET)
    assert (job.id, job.segment_seconds, job.model, job.destination) == (
        "12", Fraction(25, 2), None, f"s3://{BUCKET}/a_basic_x2.mkv")
    assert jobs.parse(json.dumps({"jobId": "j", "inputKey": "a.mp4", "parameters": {"tier": "pro"}}),
                      BUCKET).segment_seconds is None


def test_an_id_is_matched_whole() -> None:
    body = json.dumps({"jobId": "job-1\n", "inputKey": "a.mp4", "parameters": {"tier": "basic"}})
    with pytest.raises(jobs.InvalidJob, match="jobId"):
        jobs.parse(body, BUCKET)
    assert jobs.job_id_of(body) is None


def test_a_refused_uri_never_shows_its_signature() -> None:
    body = json.dumps({"jobId": "j", "inputUri": "HTTPS://h/a.mp4?X-Amz-Signature=secret",
                       "parameters": {"tier": "basic"}})
    with pytest.raises(jobs.InvalidJob, match="lower-case scheme") as refused:
        jobs.parse(body, BUCKET)
    assert "secret" not in str(refused.value)
