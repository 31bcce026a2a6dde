"""The systemd units, checked by systemd itself (``systemd-analyze verify``) and against the worker's flags.

``verify`` runs in a scratch root holding the distribution's units (for the targets ours name) and an
executable at each ExecStart path, because it also insists that the program exists; everything else about
the unit (sections, keys, values, dependencies) is judged by the installed systemd. A warning counts as a
failure: systemd ignores an unknown or misspelt key with only a warning, and an ignored hardening or
timeout line is exactly the mistake to catch.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.util import DEPLOY, WORKER_UNIT, drain_seconds, flag, service_section, worker_refusal

UNITS = DEPLOY / "systemd"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
                    None)
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None or SYSTEM_UNITS is None,
                                   reason="systemd-analyze is not installed (Debian package systemd)")


def _exec_start(unit_text: str) -> list[str]:
    return shlex.split(service_section(unit_text)["ExecStart"])


def verify(units: dict[str, str], root: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``units`` (name -> text) installed under ``root``."""
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for name, text in units.items():
        (etc / name).write_text(text)
        program = root / _exec_start(text)[0].lstrip("/")
        program.parent.mkdir(parents=True, exist_ok=True)
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    return subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", f"--root={root}", *units],
                          capture_output=True, text=True, timeout=60)


@needs_systemd
def test_units_verify_clean(tmp_path: Path) -> None:
    units = {p.name: p.read_text() for p in sorted(UNITS.glob("*.service"))}
    assert set(units) == {"streamup-worker.service", "streamup-lifecycle.service"}
    run = verify(units, tmp_path)
    assert run.returncode == 0 and run.stderr == "", run.stderr


@needs_systemd
@pytest.mark.parametrize(("change", "complaint"), [
    (("TimeoutStopSec=660", "TimeoutStopSec=eleven minutes"), "Failed to parse"),
    (("ProtectSystem=strict", "ProtectSytem=strict"), "Unknown key"),
])
def test_verify_catches_a_broken_unit(tmp_path: Path, change: tuple[str, str], complaint: str) -> None:
    text = WORKER_UNIT.read_text()
    assert change[0] in text
    run = verify({WORKER_UNIT.name: text.replace(*change)}, tmp_path)
    assert complaint in run.stderr


def test_worker_unit_stops_gracefully_and_restarts_only_on_failure() -> None:
    text = WORKER_UNIT.read_text()
    service = service_section(text)
    args = _exec_start(text)
    assert args[1] == "worker"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) > drain_seconds(args), "systemd would SIGKILL a draining worker"
    assert service["EnvironmentFile"] == "/etc/streamup/worker.env"
    assert flag(args, "--metrics-port") is not None, "no /healthz without a port"


def test_worker_unit_flags_are_the_workers() -> None:
    """ExecStart and the example STREAMUP_WORKER_ARGS, as the real ``streamup worker`` parses them."""
    args = [a for a in _exec_start(WORKER_UNIT.read_text())[2:] if a != "$STREAMUP_WORKER_ARGS"]
    example = dict(line.split("=", 1) for line in (UNITS / "worker.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    args += shlex.split(example["STREAMUP_WORKER_ARGS"])
    assert "no job queue" in worker_refusal(args)
    assert {"SQS_QUEUE_URL", "S3_BUCKET_NAME", "STATUS_QUEUE_URL", "STREAMUP_HTTP_HOST"} <= set(example)
