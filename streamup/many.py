"""Many files in one command: ``streamup upscale IN... OUTDIR/`` loads the model once and upscales each input.

Why a command of its own rather than a shell loop: each ``streamup upscale`` pays interpreter start, imports
and the model load again (seconds on a CPU; the worker measured 368 → 513 jobs/hour on the sample clip by
loading once), so a folder of episodes is faster as one process (``benchmarks/many.py``).

What a run promises:

- each input ``dir/name.ext`` becomes ``OUTDIR/name.ext``, keeping the input's container where streamup
  writes it (``OUTPUT_EXTENSIONS``), else ``OUTDIR/name.mkv`` (Matroska carries any codec and track);
- an output that is already there is skipped, never rebuilt or overwritten (so a re-run of a folder resumes
  where the last one stopped); the outputs are published atomically by ``upscale()``, so "there" means
  "finished";
- a file that fails (not a video, truncated, unwritable output, even a bug) fails alone: its one-line reason
  goes into the summary and the run goes on; a failure that would fail every file (the model cannot be
  built) stops it;
- Ctrl-C (``cancel``) stops the whole run: the file in progress leaves nothing, finished ones stay;
- each file is a job of its own for the observers (metrics count it as one).

The face sees a run only through ``upscale()``'s progress snapshots, its cancel event and its result; the
upscaler comes from ``streamup.pipeline.build_upscaler`` (or the ``build`` passed in) the first time a file
needs it, so a resumed run whose outputs all exist loads no model.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from streamup import storage
from streamup.errors import Cancelled, OutputExists, UsageError, one_line
from streamup.observe import JobRef, Observer, job_id_for, run_observed
from streamup.options import OUTPUT_EXTENSIONS

if TYPE_CHECKING:  # the pipeline imports PyAV and, through the engine, torch: only once a file runs
    from streamup.config import Config
    from streamup.engine.base import FrameUpscaler
    from streamup.options import UpscaleOptions
    from streamup.pipeline import Progress, UpscaleResult

log = logging.getLogger("streamup")

#: The container of an output whose input's extension streamup cannot write (``.avi``, ``.ts``, ``.m4v``):
#: Matroska takes every codec and track a source may carry.
FALLBACK_EXTENSION = ".mkv"


class Reporter(Protocol):
    """A progress display for one file (``streamup.progress``): called with snapshots, closed at the end."""

    def __call__(self, progress: Progress) -> None: ...

    def close(self) -> None: ...


@dataclass
class Summary:
    """What a run did, file by file: ``done`` and ``skipped`` are (input, output) pairs, ``failed`` is
    (input, output, one-line reason)."""

    done: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every file is done or skipped, 1 when any failed (the CLI's code for "some work failed")."""
        return 1 if self.failed else 0

    def record(self) -> dict[str, object]:
        """The summary as one JSON log record's fields."""
        return {
            "event": "summary",
            "done": [{"input": i, "output": o} for i, o in self.done],
            "skipped": [{"input": i, "output": o} for i, o in self.skipped],
            "failed": [{"input": i, "output": o, "error": e} for i, o, e in self.failed],
        }


def is_many(inputs: Sequence[str], output: str) -> bool:
    """Several inputs, or an output that names a folder (ends with ``/`` or is a local directory)."""
    return len(inputs) > 1 or output.endswith("/") or (_is_local(output) and os.path.isdir(output))


def output_for(source: str, outdir: str) -> str:
    """``OUTDIR/<stem><ext>``: the input's file name, its extension kept where streamup writes that
    container (case folded), else ``.mkv``. ``outdir`` may be a local folder or an ``s3://`` prefix."""
    path = urllib.parse.urlsplit(source).path if "://" in source else source
    stem, ext = posixpath.splitext(posixpath.basename(path.rstrip("/")))
    if not stem:
        raise UsageError(f"cannot name an output after {source!r}")
    ext = ext.lower() if ext.lower() in OUTPUT_EXTENSIONS else FALLBACK_EXTENSION
    return f"{outdir.rstrip('/')}/{stem}{ext}"


def plan(inputs: Sequence[str], outdir: str) -> list[tuple[str, str]]:
    """(input, output) pairs; two inputs that would write one output are a usage error before any work
    (the second would otherwise be "skipped" as already done)."""
    pairs = [(source, output_for(source, outdir)) for source in inputs]
    seen: dict[str, str] = {}
    for source, output in pairs:
        if output in seen:
            raise UsageError(f"{seen[output]} and {source} would both write {output}")
        seen[output] = source
    return pairs


def run(
    inputs: Sequence[str],
    outdir: str,
    options: UpscaleOptions,
    *,
    job: JobRef,
    observers: Sequence[Observer] = (),
    reporter: Callable[[], Reporter | None] = lambda: None,
    cancel: threading.Event | None = None,
    on_done: Callable[[UpscaleResult], None] = lambda _result: None,
    build: Callable[[UpscaleOptions], FrameUpscaler] | None = None,
    check: Callable[[str], None] | None = None,
    config: Config | None = None,
) -> Summary:
    """Upscale each input into ``outdir`` with one upscaler; returns the summary (also logged).

    ``job`` is the template of each file's job (its id becomes the output's file name); ``reporter()`` makes
    a fresh progress display per file; ``on_done(result)`` hears of each finished file (the CLI logs it as a
    one-file run does); ``build`` builds the upscaler (default ``streamup.pipeline.build_upscaler`` with
    ``config``, the environment read once); ``check(source)`` may refuse a file before its work (an
    operator's tier limits), and that file fails alone.
    Raises ``Cancelled`` once ``cancel`` is set (after logging the summary so far), and the upscaler's
    ``StreamupError`` when it cannot be built.
    """
    pairs = plan(inputs, outdir)
    if _is_local(outdir) and os.path.exists(outdir) and not os.path.isdir(outdir):
        raise UsageError(f"OUTPUT must be a folder for several inputs, and {outdir} is a file")
    storage.make_folder(outdir)
    cancel = cancel or threading.Event()
    summary = Summary()
    upscaler: FrameUpscaler | None = None
    try:
        for source, output in pairs:
            if cancel.is_set():
                raise Cancelled("cancelled")
            if storage.stat(output) is not None:
                log.info("skipped %s: %s exists", source, output,
                         extra={"fields": {"event": "skipped", "input": source, "output": output}})
                summary.skipped.append((source, output))
                continue
            if upscaler is None:
                upscaler = _build(options, build, config)
            display = reporter()
            try:
                if check is not None:
                    check(source)
                result = run_observed(dataclasses.replace(job, id=job_id_for(output)), observers, source,
                                      output, options, progress=display, cancel=cancel, upscaler=upscaler,
                                      exclusive=True, config=config)
            except OutputExists:  # another run published it while this one worked: done either way
                summary.skipped.append((source, output))
                continue
            except Cancelled:
                raise
            except Exception as e:  # one file's failure, whatever it is, is that file's alone
                reason = one_line(e)
                log.error("failed %s: %s", source, reason,
                          extra={"fields": {"event": "failed", "input": source, "output": output,
                                            "error": reason}})
                summary.failed.append((source, output, reason))
                continue
            finally:
                if display is not None:
                    display.close()
            summary.done.append((source, output))
            on_done(result)
    finally:
        _log_summary(summary, len(pairs))
    return summary


def _build(options: UpscaleOptions, build: Callable[[UpscaleOptions], FrameUpscaler] | None,
           config: Config | None) -> FrameUpscaler:
    """The run's one upscaler, with a log line saying what was loaded and how long it took."""
    start = time.perf_counter()
    if build is None:
        from streamup.pipeline import build_upscaler

        upscaler = build_upscaler(options, config)
    else:
        upscaler = build(options)
    seconds = time.perf_counter() - start
    log.info("model %s x%d loaded once for every file (%s, %s) in %.1f s", upscaler.name, upscaler.scale,
             upscaler.device, upscaler.precision, seconds,
             extra={"fields": {"event": "model_loaded", "model": upscaler.name, "device": upscaler.device,
                               "precision": upscaler.precision, "seconds": round(seconds, 3)}})
    return upscaler


def _log_summary(summary: Summary, total: int) -> None:
    failed = "".join(f"; {source}: {reason}" for source, _output, reason in summary.failed)
    level = logging.ERROR if summary.failed else logging.INFO
    log.log(level, "%d files: %d done, %d skipped (output exists), %d failed%s", total, len(summary.done),
            len(summary.skipped), len(summary.failed), failed, extra={"fields": summary.record()})


def _is_local(uri: str) -> bool:
    return "://" not in uri
