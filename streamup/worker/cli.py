"""``streamup worker``: flags and environment into ``Settings``, signals into a drain, exit 0 at the end.

Configured the way the old fleet's systemd units configured it (``SQS_QUEUE_URL``, ``S3_BUCKET_NAME``, and
now ``STATUS_QUEUE_URL``); a flag overrides its variable. SIGTERM or SIGINT stops receiving and drains; a
second signal cuts the drain short. A worker that drained exits 0: stopping is its normal end, and systemd's
``Restart=on-failure`` must not restart a worker that was told to stop.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from streamup import config
from streamup.config import Config
from streamup.errors import UsageError
from streamup.http_server import Route
from streamup.observe import Observer
from streamup.tiers import TIERS
from streamup.worker.hooks import Admit, BusyHook, JobHook

if TYPE_CHECKING:  # core imports the engine: not for `streamup --help`
    from streamup.worker.core import Settings

log = logging.getLogger("streamup")

#: Jobs run at once, sharing the model. Measured with benchmarks/worker_throughput.py (6 jobs of
#: examples/sample.mp4, realesr-animevideov3 x2; AMD EPYC Zen 4, 2 cores, AVX512-BF16, quiet, with the
#: engine's two lanes): 2 at once did 521 jobs/h against 513 for 1 (368 for one CLI run per job) at 17 %
#: more peak RSS (1170 vs 998 MiB). The lanes already fill the cores; a second job lets one job's download,
#: decode and upload overlap the other's inference (on a machine shared at load 13-16, before lanes: 116
#: against 72 jobs/h).
DEFAULT_CONCURRENCY = 2
#: Seconds running jobs get to finish after SIGTERM; systemd's TimeoutStopSec and Kubernetes'
#: terminationGracePeriodSeconds must exceed it.
DEFAULT_DRAIN_S = 60.0


def add_parser(subparsers: Any, cfg: Config | None = None) -> argparse.ArgumentParser:
    """Register ``worker`` on the main parser's subcommands; ``cfg`` (the environment, read once) gives the
    flags' defaults."""
    cfg = cfg or Config.from_environ()
    p: argparse.ArgumentParser = subparsers.add_parser(
        "worker", help="run upscale jobs from an SQS queue (env SQS_QUEUE_URL, S3_BUCKET_NAME)")
    p.add_argument("--queue-url", metavar="URL", help=f"job queue (default ${config.SQS_QUEUE_URL})")
    p.add_argument("--bucket", metavar="NAME",
                   help=f"bucket of inputKey/outputKey (default ${config.S3_BUCKET_NAME})")
    p.add_argument("--status-queue-url", metavar="URL",
                   help=f"queue for status events (default ${config.STATUS_QUEUE_URL}; none: no events)")
    p.add_argument("--concurrency", type=_positive, default=DEFAULT_CONCURRENCY, metavar="N",
                   help=f"jobs at once, sharing one loaded model (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--drain-seconds", type=float, default=DEFAULT_DRAIN_S, metavar="S",
                   help=f"after SIGTERM, how long running jobs may finish before they are cancelled "
                        f"(default {DEFAULT_DRAIN_S:.0f})")
    p.add_argument("--max-jobs", type=_positive, metavar="N", help="exit 0 after N messages (batch use)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   default=cfg.metrics_port if cfg.metrics_port is not None
                   else config.WORKER_METRICS_PORT_DEFAULT,
                   help=f"serve /healthz, /readyz and /metrics on this port (0: any free one; default "
                        f"${config.METRICS_PORT} or {config.WORKER_METRICS_PORT_DEFAULT}; host from "
                        f"${config.HTTP_HOST}, default {config.HTTP_HOST_DEFAULT})")
    p.add_argument("--poll-seconds", type=int, default=20, choices=range(21), metavar="S",
                   help="SQS long-poll wait when idle, 0-20 (default 20)")
    p.add_argument("--retry-delay", type=int, default=30, metavar="S",
                   help="a transiently failed job comes back after S x 2^(attempt-1) seconds (default 30)")
    p.add_argument("--min-lease-seconds", type=_positive, metavar="S",
                   default=cfg.min_lease_s,
                   help=f"hold a running job's message for at least S seconds per heartbeat, whatever the "
                        f"queue's visibility timeout (default ${config.MIN_LEASE_SECONDS} or "
                        f"{config.MIN_LEASE_SECONDS_DEFAULT})")
    p.add_argument("--preload", action="append", choices=tuple(TIERS), metavar="TIER",
                   help="load this tier's model before taking jobs (repeatable; default: the tiers of this "
                        "machine's device: premium and pro with CUDA, else basic and standard)")
    p.add_argument("--weights-dir", action="append", default=[], metavar="DIR", help="look for weights here")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true", help="tracebacks and every status event in the log")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def settings_from_args(args: argparse.Namespace, cfg: Config) -> Settings:
    """Flags win over the environment (``cfg``); the queue and the bucket are required."""
    from streamup.worker.core import Settings

    queue_url = args.queue_url or cfg.queue_url
    bucket = args.bucket or cfg.bucket
    if not queue_url:
        raise UsageError(f"no job queue: set {config.SQS_QUEUE_URL} or pass --queue-url")
    if not bucket:
        raise UsageError(f"no bucket: set {config.S3_BUCKET_NAME} or pass --bucket")
    if args.drain_seconds < 0 or args.retry_delay < 0:
        raise UsageError("--drain-seconds and --retry-delay must not be negative")
    return Settings(
        queue_url=queue_url,
        bucket=bucket,
        status_queue_url=args.status_queue_url or cfg.status_queue_url,
        concurrency=args.concurrency,
        drain_seconds=args.drain_seconds,
        max_jobs=args.max_jobs,
        poll_seconds=args.poll_seconds,
        retry_delay_s=args.retry_delay,
        min_lease_s=args.min_lease_seconds,
        preload=tuple(args.preload) if args.preload else None,
        weights_dirs=tuple(args.weights_dir),
        http_host=cfg.http_host,
        http_port=args.metrics_port,
        config=cfg,
    )


def run(args: argparse.Namespace, observers: Sequence[Observer] = (),
        routes: Mapping[str, Route] | None = None, *, job_hooks: Sequence[JobHook] = (),
        admit: Admit | None = None, busy_hooks: Sequence[BusyHook] = (), config: Config | None = None) -> int:
    """Run the worker until a signal (drain, exit 0) or ``--max-jobs`` (exit 0); a queue or model that cannot
    be used at start is a one-line error (exit 1 or 2). Observers, routes (e.g. ``/metrics``), job hooks (the
    fan-out), the admission rule and busy hooks come from whoever composes the command (``hooks.py``), so
    this module never imports them."""
    from streamup.worker.core import Plugins, Worker  # the engine loads here, not for `--help`
    from streamup.worker.queue import QueueError
    from streamup.worker.sqs import SqsQueue  # boto3 too

    settings = settings_from_args(args, config or Config.from_environ())
    jobs = SqsQueue(settings.queue_url)
    status = SqsQueue(settings.status_queue_url, jobs.client) if settings.status_queue_url else None
    if status is not None:
        try:  # a role that may only SendMessage there cannot read attributes: say so, do not refuse
            status.settings()
        except QueueError as e:
            log.warning("%s; status events may not arrive", e)
    plugins = Plugins(observers, routes, job_hooks, admit, busy_hooks)
    worker = Worker(settings, jobs, status, plugins)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)  # no locks in a handler: the main loop below looks every 0.1 s

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        worker.start()
        while not received and not worker.stopping():
            time.sleep(0.1)
        if received:
            log.info("%s: no more jobs; draining", signal.Signals(received[0]).name,
                     extra={"fields": {"event": "signal", "signal": signal.Signals(received[0]).name}})
    finally:
        worker.shutdown(hurry=lambda: len(received) > 1)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
