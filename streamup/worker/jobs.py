"""A queue message → a ``Job``: the JSON a Spring ``JobRequest`` serialises to, checked field by field.

The contract is ``schemas/job.schema.json``: one corpus of messages (``tests/worker/contract/``) holds this
parser and the schema to the same verdict on each. The parser is hand-written rather than driven by the schema
so that each refusal is one sentence naming the field, which is what lands in the FAILED event and in the
operator's log. Any refusal is ``InvalidJob``: a permanent failure (the same bytes would fail again), never
a retry.

What the old system sent: ``jobId``, the input as a key in the worker's bucket, and
``parameters: {device: "cpu"|"gpu", scale_factor: 2|4}`` (Java serialises the scale as a number or a string).
Added here, all optional: ``inputUri``/``outputUri`` (``s3://`` or ``https://`` input, ``s3://`` output),
``outputKey``, ``parameters.tier``, ``parameters.model`` and ``parameters.segmentSeconds``.

Readings both sides share (each was once a disagreement):
- a field given as ``null`` is absent (Jackson writes unset fields as ``null`` by default);
- text is taken as sent, never trimmed, and must hold a non-blank character and no control character or
  line break: ``$`` in a regular expression matches before a trailing newline in Python and Java, so an id
  like ``"job-1\n"`` would otherwise pass one reading and fail another (here ids are also matched whole,
  with ``fullmatch``);
- URI schemes are lower-case ``s3://bucket/key`` or ``https://host/path``; ``http://``, ``s3:foo`` and
  ``S3://`` are refused (the worker's admission policy, ``streamup.worker.admission``, then decides which
  hosts and buckets it will touch);
- ``segmentSeconds`` is a number or a decimal string, like ``scale_factor``.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from streamup.config import Config
from streamup.errors import StreamupError, UsageError
from streamup.options import JOB_DEVICES, OUTPUT_EXTENSIONS, SCALES, UpscaleOptions
from streamup.tiers import TIERS, options_for, tier_for

#: Letters, digits and ``._:-``: a UUID, a database id or a slug. The id travels as S3 user metadata (an
#: ASCII HTTP header) and in log lines, so anything else is refused rather than escaped.
JOB_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: An integer id is a Java ``long``.
LONG = (-(2**63), 2**63 - 1)
#: Control characters and line breaks (Java's ``$`` also stops before U+0085, U+2028 and U+2029).
CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
SCALE_TEXT = re.compile(r"\s*[24](\.0*)?\s*")
SECONDS_TEXT = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*")
#: A name an output may have: a file name with one of those extensions (any case) after the last ``/``.
OUTPUT_NAME = re.compile(r".*[^/]\.(mp4|mov|mkv|webm)", re.IGNORECASE)
#: ``s3://bucket/key`` (a key that names an object, not a folder).
S3_URI = r"s3://[^/]+/.*[^/]"
#: ``https://host[:port]/path[?query]``: the authority is a host name, an IP literal and a port, nothing
#: else (no ``user@``, no backslash, no percent-escape), so every URL parser reads the same host from it.
HTTPS_URI = r"https://[A-Za-z0-9._~:\[\]-]+/[^?#]*[^/?#](\?[^#]*)?"
INPUT_URI = re.compile(f"{S3_URI}|{HTTPS_URI}")
OUTPUT_URI = re.compile(S3_URI)


class InvalidJob(StreamupError):
    """The message cannot be run as sent. ``job_id`` is set when the message named one."""

    exit_code = 2

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class Refused(InvalidJob):
    """A well-formed job this worker will not run: a host, a bucket or a tier limit its admission policy
    forbids (``streamup.worker.admission``). Refused before any fetch, so its FAILED event has its own code
    (``JOB_REFUSED``) and says which rule or limit, with the value."""


@dataclass(frozen=True)
class Job:
    """One upscale to run: where from, where to, and the tier and overrides that make its options.

    ``segment_seconds``: ``parameters.segmentSeconds`` as sent (0: never fan out); None when absent.
    ``message``: the decoded message itself, for hooks that read fields of their own (the fan-out's
    ``segment``): the body is decoded once."""

    id: str
    source: str
    destination: str
    tier: str
    device: str
    scale: int
    model: str | None
    segment_seconds: Fraction | None = None
    message: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def options(self, weights_dirs: tuple[str, ...] = (), config: Config | None = None) -> UpscaleOptions:
        """The run's options through ``tiers.options_for``, exactly as the CLI builds them for ``--tier``."""
        return options_for(self.tier, config, device=self.device, scale=self.scale, model=self.model,
                           weights_dirs=weights_dirs)


def parse(body: str, bucket: str, config: Config | None = None) -> Job:
    """The job in a message body; ``bucket`` is ``S3_BUCKET_NAME`` (where ``inputKey``/``outputKey`` live);
    ``config`` holds the tier overrides (None: read the environment now)."""
    data = decode(body)
    if not isinstance(data, dict):
        raise InvalidJob(f"message body must be a JSON object, got {type(data).__name__}")
    job_id = _job_id(data.get("jobId"))
    try:
        return _job(data, job_id, bucket, config)
    except InvalidJob as e:
        e.job_id = job_id
        raise
    except UsageError as e:  # tier table or options refused it (e.g. a tier overridden to a bad value)
        raise InvalidJob(str(e), job_id) from None


def decode(body: str) -> Any:
    """The JSON value of a message body, read strictly: ``NaN``, ``Infinity`` and numbers beyond a double's
    range are not JSON (Python's reader accepts them, Jackson's refuses them), so they are refused here."""
    try:
        return json.loads(body, parse_constant=_not_json, parse_float=_finite)
    except ValueError as e:
        raise InvalidJob(f"message body is not JSON ({e})") from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def job_id_of(body: str) -> str | None:
    """The job id a message names, if it names a usable one (for the FAILED event of a broken message)."""
    try:
        data = decode(body)
        return _job_id(data.get("jobId")) if isinstance(data, dict) else None
    except InvalidJob:
        return None


def _job_id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has numbers, not integers: 42.0 is the integer 42
    if isinstance(value, int) and not isinstance(value, bool):
        if not LONG[0] <= value <= LONG[1]:
            raise InvalidJob("jobId is out of range for an integer id (a 64-bit signed number)")
        return str(value)
    if not isinstance(value, str):
        raise InvalidJob("jobId is missing (want a string or an integer)")
    if not JOB_ID.fullmatch(value):
        raise InvalidJob(f"jobId {value[:40]!r} is not 1-128 letters, digits or ._:-")
    return value


def _job(data: dict[str, Any], job_id: str, bucket: str, config: Config | None) -> Job:
    params = data.get("parameters")
    if not isinstance(params, dict):
        raise InvalidJob("parameters must be a JSON object")
    device, scale, tier = _tier(params, config)
    model = _text(params, "model", "parameters.model")
    seconds = _seconds(params.get("segmentSeconds"))
    source = _one_of(data, "inputKey", "inputUri", bucket, required=True)
    destination = _one_of(data, "outputKey", "outputUri", bucket, required=False)
    if destination is None:
        key = derived_key(source, tier, scale)
        destination = f"s3://{_need_bucket(bucket, 'a derived output key')}/{key}"
    if not OUTPUT_NAME.fullmatch(destination):
        raise InvalidJob(f"the output must end in one of {' '.join(OUTPUT_EXTENSIONS)}: {destination}")
    if destination == source:
        raise InvalidJob("the output would replace the input")
    return Job(job_id, source, destination, tier, device, scale, model, seconds, data)


def _tier(params: dict[str, Any], config: Config | None) -> tuple[str, int, str]:
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
    named = tier_for(device, scale, config).name
    if tier is not None and tier != named:
        raise InvalidJob(f"tier {tier!r} contradicts device {device} at {scale}x (that is {named!r})")
    return device, scale, named


def _device(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in JOB_DEVICES:
        raise InvalidJob(f"unknown device {value!r}: one of {', '.join(JOB_DEVICES)}")
    return value.lower()


def _scale(value: Any) -> int:
    """2 or 4, sent as a number (2, 2.0) or a string ("2", "4.0"): Java serialises either."""
    if isinstance(value, str) and SCALE_TEXT.fullmatch(value):
        return int(value.strip()[0])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value in SCALES:
        return int(value)
    raise InvalidJob(f"unsupported scale_factor {value!r}: one of {', '.join(map(str, SCALES))}")


def _seconds(value: Any) -> Fraction | None:
    """``segmentSeconds``: a finite number >= 0 or a decimal string (Java's BigDecimal may be either)."""
    if value is None:
        return None
    if isinstance(value, str) and SECONDS_TEXT.fullmatch(value):
        return Fraction(value.strip())
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value) and value >= 0:
        return Fraction(str(value))
    raise InvalidJob(f"parameters.segmentSeconds {value!r} is not a number of seconds >= 0")


def _text(data: dict[str, Any], key: str, name: str) -> str | None:
    """A text field as sent (None when absent or null): something to read, no control characters."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not re.search(r"\S", value):
        raise InvalidJob(f"{name} must be a non-empty string")
    if CONTROL.search(value):
        raise InvalidJob(f"{name} must not contain control characters or line breaks")
    return value


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
        pattern, want = (INPUT_URI, "an s3://bucket/key or https://host/path") if required else \
            (OUTPUT_URI, "an s3://bucket/key")
        if not pattern.fullmatch(uri):
            shown = uri.split("?", 1)[0]  # a presigned URL's signature stays out of events and logs
            raise InvalidJob(f"{uri_field} must be {want} URI (lower-case scheme, no user@), got {shown!r}")
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
