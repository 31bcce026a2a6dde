"""Every environment variable streamup reads, named once (as dramatiq's ``worker.py`` names its settings).

Code reads the environment only through these constants (``os.environ.get(config.WEIGHTS_DIR)``), so this
module is the complete list an operator needs; the README and ``docs/en/upscale-guide.md`` document each.
AWS settings (credentials, ``AWS_REGION``, ``AWS_ENDPOINT_URL``...) are boto3's own and are not repeated here.
"""

from __future__ import annotations

# -- models ------------------------------------------------------------------------------------------------
#: Folders searched for weights before the user cache and the bundled ones (``os.pathsep`` list).
WEIGHTS_DIR = "STREAMUP_WEIGHTS_DIR"
#: "1" forbids downloading weights (air-gapped workers fail fast with the fetch command instead).
OFFLINE = "STREAMUP_OFFLINE"
#: Replaces the official release base URL for downloads (``<mirror>/<release>/<file>``).
WEIGHTS_MIRROR = "STREAMUP_WEIGHTS_MIRROR"

# -- tiers -------------------------------------------------------------------------------------------------
#: Prefix of per-tier overrides: ``STREAMUP_TIER_<TIER>_<FIELD>``, e.g. ``STREAMUP_TIER_PRO_MODEL``.
TIER_PREFIX = "STREAMUP_TIER_"

# -- HTTP endpoint (health, metrics) -----------------------------------------------------------------------
#: Address the health/metrics endpoint binds; loopback by default, ``0.0.0.0`` in containers and pods.
HTTP_HOST = "STREAMUP_HTTP_HOST"
HTTP_HOST_DEFAULT = "127.0.0.1"

# -- metrics (docs/metrics.md) -----------------------------------------------------------------------------
#: Default of ``--metrics-port``: ``/metrics`` of ``streamup upscale``; the worker's health and metrics port.
METRICS_PORT = "STREAMUP_METRICS_PORT"
#: The worker serves /healthz, /readyz and /metrics on this port unless told otherwise (0: any free port).
WORKER_METRICS_PORT_DEFAULT = 9400
#: Pushgateway URL a run pushes its final metrics to, grouped by job id (``--pushgateway``).
PUSHGATEWAY = "STREAMUP_PUSHGATEWAY"
#: Seconds ``/metrics`` stays up after a one-shot run, for a last scrape (``--metrics-linger``).
METRICS_LINGER = "STREAMUP_METRICS_LINGER"

# -- worker (README "Worker") ------------------------------------------------------------------------------
#: The SQS queue ``streamup worker`` takes jobs from (``--queue-url``); the old fleet's name, kept.
SQS_QUEUE_URL = "SQS_QUEUE_URL"
#: The bucket a job's ``inputKey``/``outputKey`` live in (``--bucket``); the old fleet's name, kept.
S3_BUCKET_NAME = "S3_BUCKET_NAME"
#: Optional SQS queue the worker sends status events to (``--status-queue-url``); unset: no events.
STATUS_QUEUE_URL = "STATUS_QUEUE_URL"
#: Shortest hold (seconds) of a running job's message per heartbeat (``--min-lease-seconds``), whatever the
#: queue's visibility timeout: a consumer thread starved of CPU for a few seconds (a loaded 2-core machine, a
#: job thread holding the GIL) must not let a running message reach another worker; a dead worker's
#: messages come back after at most this long.
MIN_LEASE_SECONDS = "STREAMUP_MIN_LEASE_SECONDS"
MIN_LEASE_SECONDS_DEFAULT = 30

# -- fan-out (one long video over many workers: streamup.fanout, docs/fanout.md) ----------------------------
#: Folder (key prefix) in the output bucket for a fanned-out job's plan, segments and records.
WORK_PREFIX = "STREAMUP_WORK_PREFIX"
#: Source duration (seconds) above which a job without ``parameters.segmentSeconds`` is fanned out.
FANOUT_ABOVE_SECONDS = "STREAMUP_FANOUT_ABOVE_SECONDS"
#: Segment length (seconds) of a job fanned out automatically.
SEGMENT_SECONDS = "STREAMUP_SEGMENT_SECONDS"
