"""How the CLI shows a run's progress: a bar on a terminal, sparse log lines (text or JSON) everywhere else.

The pipeline only calls back with ``Progress`` snapshots; turning them into output is a face's business, so
a worker or a metrics exporter can consume the same snapshots differently.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the CLI must not import torch (via the pipeline) just to print --help
    from streamup.pipeline import Progress

log = logging.getLogger("streamup")

STEP = 0.05  # a log line every 5 %
UNKNOWN_TOTAL_EVERY_S = 30.0  # without a frame estimate, a line this often instead


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, plus the ``fields`` a caller attached."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry)


def configure_logging(fmt: str, stream: TextIO) -> None:
    """Route the ``streamup`` logger to ``stream`` as ``streamup: level: message`` lines or JSON."""
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


class _TextFormatter(logging.Formatter):
    """``streamup: warning: ...``: the same shape as the CLI's error line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"streamup: {record.levelname.lower()}: {record.getMessage()}"


def _fields(p: Progress) -> dict[str, object]:
    return {
        "frames": p.frames_done,
        "frames_total": p.frames_total,
        "percent": round(100 * p.fraction, 1) if p.fraction is not None else None,
        "fps": round(p.fps, 2),
        "eta_s": round(p.eta_s, 1) if p.eta_s is not None else None,
        "stage_busy_s": {k: round(v, 2) for k, v in p.stage_busy_s.items()},
    }


class LogProgress:
    """A log line every 5 % of the estimated frames (every 30 s when there is no estimate)."""

    def __init__(self) -> None:
        self._next = STEP
        self._last = time.monotonic()

    def __call__(self, p: Progress) -> None:
        fraction = p.fraction
        now = time.monotonic()
        if fraction is not None:
            if fraction < self._next:
                return
            self._next = (int(fraction / STEP + 1e-9) + 1) * STEP
        elif now - self._last < UNKNOWN_TOTAL_EVERY_S:
            return
        self._last = now
        pct = f"{100 * fraction:3.0f}% " if fraction is not None else ""
        total = f"/{p.frames_total}" if p.frames_total else ""
        eta = f", eta {p.eta_s:.0f} s" if p.eta_s is not None else ""
        fields = {"fields": _fields(p)}
        log.info("%s%d%s frames, %.2f fps%s", pct, p.frames_done, total, p.fps, eta, extra=fields)

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar for a terminal: frames done of the estimate, with fps and ETA."""

    def __init__(self, stream: TextIO) -> None:
        from tqdm import tqdm

        width = shutil.get_terminal_size((100, 24)).columns  # a fresh pty may report 0 columns
        self._bar = tqdm(total=None, unit="frame", file=stream, ncols=width, leave=True)

    def __call__(self, p: Progress) -> None:
        if p.frames_total and self._bar.total != p.frames_total:
            self._bar.total = p.frames_total
        self._bar.update(p.frames_done - self._bar.n)

    def close(self) -> None:
        self._bar.close()
