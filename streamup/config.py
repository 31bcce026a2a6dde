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

# -- fan-out (one long video over many workers: streamup.fanout, docs/fanout.md) ----------------------------
#: Folder (key prefix) in the output bucket for a fanned-out job's plan, segments and records.
WORK_PREFIX = "STREAMUP_WORK_PREFIX"
#: Source duration (seconds) above which a job without ``parameters.segmentSeconds`` is fanned out.
FANOUT_ABOVE_SECONDS = "STREAMUP_FANOUT_ABOVE_SECONDS"
#: Segment length (seconds) of a job fanned out automatically.
SEGMENT_SECONDS = "STREAMUP_SEGMENT_SECONDS"

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
