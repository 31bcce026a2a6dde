"""What the deploy tests share: where the deploy files are, and the worker's own judgement of their flags."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from collections.abc import Sequence

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
WORKER_UNIT = DEPLOY / "systemd" / "streamup-worker.service"


def service_section(unit_text: str) -> configparser.SectionProxy:
    """A unit's [Service] keys (case kept; a repeated key keeps its last value, as systemd does for these)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit_text)
    return parser["Service"]


def flag(args: Sequence[str], name: str) -> str | None:
    """The value after the last ``name`` in ``args`` (argparse keeps the last one), or None."""
    values = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == name]
    return values[-1] if values else None


def drain_seconds(args: Sequence[str]) -> float:
    value = flag(args, "--drain-seconds")
    assert value is not None, f"no --drain-seconds in {list(args)}: the default (60 s) would apply silently"
    return float(value)


def worker_refusal(args: Sequence[str]) -> str:
    """Run the real ``streamup worker ARGS`` with no queue configured and return its error line.

    With flags it accepts, the worker stops at the missing queue ("no job queue"); a flag it does not know,
    or a bad value, is refused by its parser first. So the deploy files are checked against the worker's
    actual command line, not a copy of it.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("SQS_QUEUE_URL", "S3_BUCKET_NAME")}
    run = subprocess.run([sys.executable, "-m", "streamup", "worker", *args], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2, (run.returncode, run.stderr)
    return run.stderr.strip().splitlines()[-1]
