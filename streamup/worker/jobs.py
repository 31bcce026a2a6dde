"""A queue message → a ``Job``: the JSON a Spring ``JobRequest`` serialises to, checked field by field.

The contract is ``schemas/job.schema.json`` (tests hold this parser and the schema to the same examples). The
parser is hand-written rather than driven by the schema so that each refusal is one sentence naming the
field, which is what lands in the FAILED event and in the operator's log. Any refusal is ``InvalidJob``: a
permanent failure (the same bytes would fail again), never a retry.

What the old system sent: ``jobId``, the input as a key in the worker's bucket, and
``parameters: {device: "cpu"|"gpu", scale_factor: 2|4}`` (Java serialises the scale as a number or a string).
Added here, all optional: ``inputUri``/``outputUri`` (``s3://`` or ``https://`` input), ``outputKey``,
``parameters.tier`` and ``parameters.model``.
"""

from __future__ import annotations

import json
import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from streamup.errors import StreamupError, UsageError
from streamup.options import UpscaleOptions
from streamup.tiers import TIERS, options_for, tier_for

#: Letters, digits and ``._:-``: a UUID, a database id or a slug. The id travels as S3 user metadata (an
#: ASCII HTTP header) and in log lines, so anything else is refused rather than escaped.
JOB_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
DEVICES = ("cpu", "gpu")
SCALES = (2, 4)
SCALE_TEXT = re.compile(r"^\s*[24](\.0*)?\s*$")
#: Output containers (an output's extension picks one); a derived output keeps its input's if listed here,
#: else becomes ``.mp4``.
OUTPUT_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")


class InvalidJob(StreamupError):
    """The message cannot be run as sent. ``job_id`` is set when the message named one."""

    exit_code = 2

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


@dataclass(frozen=True)
class Job:
    """One upscale to run: where from, where to, and the tier and overrides that make its options."""

    id: str
    source: str
    destination: str
    tier: str
    device: str
    scale: int
    model: str | None

    def options(self, weights_dirs: tuple[str, ...] = ()) -> UpscaleOptions:
        """The run's options through ``tiers.options_for``, exactly as the CLI builds them for ``--tier``."""
        return options_for(self.tier, device=self.device, scale=self.scale, model=self.model,
                           weights_dirs=weights_dirs)


def parse(body: str, bucket: str) -> Job:
    """The job in a message body; ``bucket`` is ``S3_BUCKET_NAME`` (where ``inputKey``/``outputKey`` live)."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise InvalidJob(f"message body is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise InvalidJob(f"message body must be a JSON object, got {type(data).__name__}")
    job_id = _job_id(data.get("jobId"))
    try:
        return _job(data, job_id, bucket)
    except InvalidJob as e:
        e.job_id = job_id
        raise
    except UsageError as e:  # tier table or options refused it (e.g. a tier overridden to a bad value)
        raise InvalidJob(str(e), job_id) from None


def job_id_of(body: str) -> str | None:
    """The job id a message names, if it names a usable one (for the FAILED event of a broken message)."""
    try:
        data = json.loads(body)
        return _job_id(data.get("jobId")) if isinstance(data, dict) else None
    except (ValueError, InvalidJob):
        return None


def _job_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidJob("jobId is missing (want a string or an integer)")
    text = str(value)
    if not JOB_ID.match(text):
        raise InvalidJob(f"jobId {text[:40]!r} is not 1-128 letters, digits or ._:-")
    return text


def _job(data: dict[str, Any], job_id: str, bucket: str) -> Job:
    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise InvalidJob("parameters must be a JSON object")
    device, scale, tier = _tier(params)
    model = _text(params, "model", "parameters.model")
    source = _one_of(data, "inputKey", "inputUri", bucket, required=True)
    destination = _one_of(data, "outputKey", "outputUri", bucket, required=False)
    if destination is None:
        key = derived_key(source, tier, scale)
        destination = f"s3://{_need_bucket(bucket, 'a derived output key')}/{key}"
    if not destination.startswith("s3://"):
        raise InvalidJob(f"outputUri must be an s3:// URI, got {destination!r}")
    if posixpath.splitext(destination)[1].lower() not in OUTPUT_EXTENSIONS:
        raise InvalidJob(f"the output must end in one of {' '.join(OUTPUT_EXTENSIONS)}: {destination}")
    if destination == source:
        raise InvalidJob("the output would replace the input")
    return Job(job_id, source, destination, tier, device, scale, model)


def _tier(params: dict[str, Any]) -> tuple[str, int, str]:
    """(device, scale, tier name). A tier fills what device and scale leave out; without one, both are needed
    and name the tier as in the old system; when all are given they must agree."""
    tier = _text(params, "tier", "parameters.tier")
    if tier is not None and tier not in TIERS:
        raise InvalidJob(f"unknown tier {tier!r}: one of {', '.join(TIERS)}")
    raw_device, raw_scale = params.get("device"), params.get("scale_factor")
    if tier is None and (raw_device is None or raw_scale is None):
        raise InvalidJob("parameters need device and scale_factor (or a tier)")
    device = TIERS[tier].device if raw_device is None and tier else _device(raw_device)
    scale = TIERS[tier].scale if raw_scale is None and tier else _scale(raw_scale)
    named = tier_for(device, scale).name
    if tier is not None and tier != named:
        raise InvalidJob(f"tier {tier!r} contradicts device {device} at {scale}x (that is {named!r})")
    return device, scale, named


def _device(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in DEVICES:
        raise InvalidJob(f"unknown device {value!r}: one of {', '.join(DEVICES)}")
    return value.lower()


def _scale(value: Any) -> int:
    """2 or 4, sent as a number (2, 2.0) or a string ("2", "4.0"): Java serialises either."""
    if isinstance(value, str) and SCALE_TEXT.match(value):
        return int(value.strip()[0])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in SCALES:
        return int(value)
    raise InvalidJob(f"unsupported scale_factor {value!r}: one of {', '.join(map(str, SCALES))}")


def _text(data: dict[str, Any], key: str, name: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidJob(f"{name} must be a non-empty string")
    return value.strip()


def _one_of(data: dict[str, Any], key_field: str, uri_field: str, bucket: str, *,
            required: bool) -> str | None:
    """An object named by a key in the worker's bucket or by a full URI: one of the two, never both."""
    key, uri = _text(data, key_field, key_field), _text(data, uri_field, uri_field)
    if key is not None and uri is not None:
        raise InvalidJob(f"give {key_field} or {uri_field}, not both")
    if key is not None:
        if key.endswith("/"):
            raise InvalidJob(f"{key_field} {key!r} names a folder, not an object")
        return f"s3://{_need_bucket(bucket, key_field)}/{key.lstrip('/')}"
    if uri is not None:
        if urllib.parse.urlsplit(uri).scheme not in ("s3", "https", "http"):
            raise InvalidJob(f"{uri_field} must be an s3:// or https:// URI, got {uri!r}")
        return uri
    if required:
        raise InvalidJob(f"the job needs {key_field} or {uri_field}")
    return None


def _need_bucket(bucket: str, what: str) -> str:
    if not bucket:
        raise InvalidJob(f"{what} needs the worker's S3_BUCKET_NAME, which is not set")
    return bucket


def derived_key(source: str, tier: str, scale: int) -> str:
    """``videos/clip.mp4`` upscaled by tier standard → ``videos/clip_standard_x4.mp4`` (same folder, the
    input's container when it can be written, else mp4)."""
    path = urllib.parse.urlsplit(source).path
    if source.startswith("s3://"):
        path = source[len("s3://"):].partition("/")[2]
    stem, ext = posixpath.splitext(path.lstrip("/"))
    if not stem or stem.endswith("/"):
        raise InvalidJob(f"cannot derive an output name from {source!r}: give outputKey")
    ext = ext.lower() if ext.lower() in OUTPUT_EXTENSIONS else ".mp4"
    return f"{stem}_{tier}_x{scale}{ext}"
