"""Every setting streamup takes from the environment, and every default of those settings, in one place.

A face reads the environment once, ``Config.from_environ(os.environ)``, and hands the one ``Config`` down to
what it calls (the engine's weights lookup, the tier table, the metrics endpoint), the way dramatiq's
``worker.py`` documents its settings in one place; the modules that take a ``Config`` never look at
``os.environ``. A call that is given none (``streamup.upscale(...)``, ``streamup.build_upscaler(options)``,
``tiers.options_for``) reads one at that call. A value that does not parse is a one-line ``UsageError``
naming the variable.

The variable names stay importable as constants (``config.WEIGHTS_DIR`` ...) for messages and help texts.
AWS settings (credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL``...) are boto3's own and are not repeated here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from streamup.errors import UsageError

# The variables' names (each is documented at its ``Config`` field below) and the defaults of the settings.
# -- models ------------------------------------------------------------------------------------------------
WEIGHTS_DIR = "STREAMUP_WEIGHTS_DIR"
OFFLINE = "STREAMUP_OFFLINE"
WEIGHTS_MIRROR = "STREAMUP_WEIGHTS_MIRROR"
#: The XDG base-directory variable; the weights cache is ``$XDG_CACHE_HOME/streamup/weights``.
XDG_CACHE_HOME = "XDG_CACHE_HOME"
# -- tiers -------------------------------------------------------------------------------------------------
#: Prefix of per-tier overrides: ``STREAMUP_TIER_<TIER>_<FIELD>``, e.g. ``STREAMUP_TIER_PRO_MODEL``.
TIER_PREFIX = "STREAMUP_TIER_"
# -- HTTP endpoint (health, metrics) -----------------------------------------------------------------------
HTTP_HOST = "STREAMUP_HTTP_HOST"
HTTP_HOST_DEFAULT = "127.0.0.1"
# -- metrics (docs/metrics.md) -----------------------------------------------------------------------------
METRICS_PORT = "STREAMUP_METRICS_PORT"
#: The worker serves /healthz, /readyz and /metrics on this port unless told otherwise (0: any free port).
WORKER_METRICS_PORT_DEFAULT = 9400
PUSHGATEWAY = "STREAMUP_PUSHGATEWAY"
METRICS_LINGER = "STREAMUP_METRICS_LINGER"
# -- worker (docs/worker.md): the old fleet's names, kept -------------------------------------------------
SQS_QUEUE_URL = "SQS_QUEUE_URL"
S3_BUCKET_NAME = "S3_BUCKET_NAME"
STATUS_QUEUE_URL = "STATUS_QUEUE_URL"
#: Shortest hold (seconds) of a running job's message per heartbeat (``--min-lease-seconds``), whatever the
#: queue's visibility timeout: a consumer thread starved of CPU for a few seconds (a loaded 2-core machine, a
#: job thread holding the GIL) must not let a running message reach another worker; a dead worker's
#: messages come back after at most this long.
MIN_LEASE_SECONDS = "STREAMUP_MIN_LEASE_SECONDS"
MIN_LEASE_SECONDS_DEFAULT = 30

# -- fan-out (one long video over many workers: streamup.fanout, docs/fanout.md) ----------------------------
WORK_PREFIX = "STREAMUP_WORK_PREFIX"
WORK_PREFIX_DEFAULT = "streamup-work"
FANOUT_ABOVE_SECONDS = "STREAMUP_FANOUT_ABOVE_SECONDS"
#: A job without ``parameters.segmentSeconds`` fans out when its source is longer than this (seconds) ...
FANOUT_ABOVE_SECONDS_DEFAULT = 60.0
SEGMENT_SECONDS = "STREAMUP_SEGMENT_SECONDS"
#: ... in segments of this length: a 5-minute video makes 10 segments, one per CPU worker of the fleet.
SEGMENT_SECONDS_DEFAULT = Fraction(30)

# -- admission (what a worker accepts: streamup.worker.admission; guide: "Hostile jobs") ------------------
#: https hosts a job's ``inputUri`` may name (comma- or space-separated; ``*.example.com`` for a domain's
#: hosts, ``*`` for any public host). Default: none, so inputs come from S3 (``s3://``, ``inputKey``) only.
ALLOWED_INPUT_HOSTS = "STREAMUP_ALLOWED_INPUT_HOSTS"
#: Networks (CIDRs) an allowed input host may resolve into although they are loopback, link-local or
#: private, e.g. ``10.20.0.0/16`` for an in-VPC object store. Default: none.
ALLOWED_INPUT_NETWORKS = "STREAMUP_ALLOWED_INPUT_NETWORKS"
#: Buckets besides ``S3_BUCKET_NAME`` that a job's ``outputUri`` may write to. Default: none.
ALLOWED_OUTPUT_BUCKETS = "STREAMUP_ALLOWED_OUTPUT_BUCKETS"

# -- scale-in protection (EC2 Auto Scaling: streamup.worker.scalein) ---------------------------------------
#: "1": the worker protects its own instance from scale-in while it holds a job and lifts it when idle.
SCALE_IN_PROTECTION = "STREAMUP_SCALE_IN_PROTECTION"
#: The Auto Scaling group of this instance (deploy/aws/streamup-fleet.yaml's user data sets it).
ASG_NAME = "STREAMUP_ASG_NAME"
#: This instance's id (deploy/aws/bootstrap.sh reads it from the instance metadata at boot; the worker
#: itself never calls the metadata service).
INSTANCE_ID = "STREAMUP_INSTANCE_ID"


N = TypeVar("N")
D = TypeVar("D")


def _default_cache() -> Path:
    return Path.home() / ".cache" / "streamup" / "weights"


@dataclass(frozen=True)
class Config:
    """The environment, read once. Each field names its variable; its default is the value when unset."""

    #: ``STREAMUP_WEIGHTS_DIR``: folders searched for weights after ``--weights-dir`` and before the cache
    #: (an ``os.pathsep`` list).
    weights_dirs: tuple[Path, ...] = ()
    #: ``STREAMUP_OFFLINE``: anything but empty or "0" forbids downloading weights (air-gapped workers fail
    #: fast with the fetch command instead).
    offline: bool = False
    #: ``STREAMUP_WEIGHTS_MIRROR``: replaces the official release base URL for downloads
    #: (``<mirror>/<release>/<file>``); empty: the release on GitHub.
    weights_mirror: str = ""
    #: ``XDG_CACHE_HOME``: the per-user download cache is ``$XDG_CACHE_HOME/streamup/weights``
    #: (default ``~/.cache/streamup/weights``).
    weights_cache: Path = field(default_factory=_default_cache)
    #: ``STREAMUP_TIER_<TIER>_<FIELD>``: tier overrides by (tier, field), lower case, values as written,
    #: e.g. ``STREAMUP_TIER_PRO_MODEL=RealESRGAN_x4plus_anime_6B`` is ``("pro", "model")``;
    #: ``streamup.tiers`` checks and converts them.
    tier_overrides: Mapping[tuple[str, str], str] = field(default_factory=dict, hash=False)
    #: ``STREAMUP_HTTP_HOST``: the address the health/metrics endpoint binds; ``0.0.0.0`` in containers.
    http_host: str = HTTP_HOST_DEFAULT
    #: ``STREAMUP_METRICS_PORT``: default of ``--metrics-port`` (``/metrics`` of ``streamup upscale``; the
    #: worker's health and metrics port, ``WORKER_METRICS_PORT_DEFAULT`` when unset).
    metrics_port: int | None = None
    #: ``STREAMUP_PUSHGATEWAY``: Pushgateway URL a run pushes its final metrics to (``--pushgateway``).
    pushgateway: str | None = None
    #: ``STREAMUP_METRICS_LINGER``: seconds ``/metrics`` stays up after a one-shot run, for a last scrape.
    metrics_linger_s: float = 0.0
    #: ``SQS_QUEUE_URL``: the queue ``streamup worker`` takes jobs from (``--queue-url``).
    queue_url: str | None = None
    #: ``S3_BUCKET_NAME``: the bucket a job's ``inputKey``/``outputKey`` live in (``--bucket``).
    bucket: str | None = None
    #: ``STATUS_QUEUE_URL``: optional queue the worker sends status events to; unset: no events.
    status_queue_url: str | None = None
    #: ``STREAMUP_WORK_PREFIX``: folder (key prefix) in the output bucket for fanned-out jobs' pieces.
    work_prefix: str = WORK_PREFIX_DEFAULT
    #: ``STREAMUP_FANOUT_ABOVE_SECONDS``: source duration above which a job is fanned out.
    fanout_above_s: float = FANOUT_ABOVE_SECONDS_DEFAULT
    #: ``STREAMUP_SEGMENT_SECONDS``: segment length of a job fanned out automatically.
    #: Exact (a ``Fraction``): segment bounds are compared with frame timestamps.
    segment_s: Fraction = SEGMENT_SECONDS_DEFAULT
    #: ``STREAMUP_MIN_LEASE_SECONDS``: default of the worker's ``--min-lease-seconds``.
    min_lease_s: int = MIN_LEASE_SECONDS_DEFAULT
    #: ``STREAMUP_ALLOWED_INPUT_HOSTS``: https hosts a job's input may name (words; ``*.domain``, ``*``).
    allowed_input_hosts: tuple[str, ...] = ()
    #: ``STREAMUP_ALLOWED_INPUT_NETWORKS``: private networks (CIDRs) an allowed input host may resolve into.
    allowed_input_networks: tuple[str, ...] = ()
    #: ``STREAMUP_ALLOWED_OUTPUT_BUCKETS``: buckets besides ``S3_BUCKET_NAME`` a job's output may name.
    allowed_output_buckets: tuple[str, ...] = ()
    #: ``STREAMUP_SCALE_IN_PROTECTION``: "1" protects this instance from scale-in while a job runs.
    scale_in_protection: bool = False
    #: ``STREAMUP_ASG_NAME``: this instance's Auto Scaling group (for scale-in protection).
    asg_name: str | None = None
    #: ``STREAMUP_INSTANCE_ID``: this instance's id (for scale-in protection).
    instance_id: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Config:
        """The settings in ``environ`` (``os.environ`` when None); unset or empty variables keep defaults."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            return env.get(name) or None

        cache = text(XDG_CACHE_HOME)
        return cls(
            weights_dirs=tuple(Path(d).expanduser() for d in env.get(WEIGHTS_DIR, "").split(os.pathsep) if d),
            offline=env.get(OFFLINE, "") not in ("", "0"),
            weights_mirror=env.get(WEIGHTS_MIRROR, "").rstrip("/"),
            weights_cache=Path(cache) / "streamup" / "weights" if cache else _default_cache(),
            tier_overrides={
                (tier.lower(), name.lower()): value
                for var, value in env.items() if var.startswith(TIER_PREFIX)
                for tier, _, name in [var[len(TIER_PREFIX):].partition("_")]
            },
            http_host=text(HTTP_HOST) or HTTP_HOST_DEFAULT,
            metrics_port=_number(env, METRICS_PORT, int, None),
            pushgateway=text(PUSHGATEWAY),
            metrics_linger_s=_number(env, METRICS_LINGER, float, 0.0),
            queue_url=text(SQS_QUEUE_URL),
            bucket=text(S3_BUCKET_NAME),
            status_queue_url=text(STATUS_QUEUE_URL),
            work_prefix=(text(WORK_PREFIX) or WORK_PREFIX_DEFAULT).strip("/"),
            fanout_above_s=_number(env, FANOUT_ABOVE_SECONDS, float, FANOUT_ABOVE_SECONDS_DEFAULT),
            segment_s=_number(env, SEGMENT_SECONDS, Fraction, SEGMENT_SECONDS_DEFAULT),
            min_lease_s=_number(env, MIN_LEASE_SECONDS, int, MIN_LEASE_SECONDS_DEFAULT),
            allowed_input_hosts=_words(env.get(ALLOWED_INPUT_HOSTS, "")),
            allowed_input_networks=_words(env.get(ALLOWED_INPUT_NETWORKS, "")),
            allowed_output_buckets=_words(env.get(ALLOWED_OUTPUT_BUCKETS, "")),
            scale_in_protection=env.get(SCALE_IN_PROTECTION, "").strip().lower() in ("1", "true", "yes"),
            asg_name=text(ASG_NAME),
            instance_id=text(INSTANCE_ID),
        )


def tier_variable(tier: str, name: str) -> str:
    """The environment variable that overrides ``name`` of ``tier`` (for messages)."""
    return f"{TIER_PREFIX}{tier.upper()}_{name.upper()}"


def _words(text: str) -> tuple[str, ...]:
    """A list written with commas and/or spaces."""
    return tuple(text.replace(",", " ").split())


def _number(env: Mapping[str, str], name: str, kind: Callable[[str], N], default: D) -> N | D:
    """The variable as ``kind`` (``default`` when unset or empty), or a one-line error naming it."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {raw!r}") from None
