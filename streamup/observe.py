"""How a face's runs are observed (metrics, logs) without the face importing the observer.

Like dramatiq's middleware: the CLI and the worker call ``run_observed`` with whatever observers they were
given, and each observer hears when a job starts, every progress snapshot, and how it ended. An observer
never reaches inside a run: it sees only the ``Progress`` snapshots and the ``UpscaleResult`` that
``upscale()`` hands every caller.
"""

from __future__ import annotations

import dataclasses
import itertools
import posixpath
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from streamup.errors import Cancelled

if TYPE_CHECKING:  # the pipeline imports PyAV: keep `streamup --help` light
    from streamup.options import UpscaleOptions
    from streamup.pipeline import Progress, ProgressCallback, UpscaleResult

SUCCEEDED, FAILED, CANCELLED, RETRIED = "succeeded", "failed", "cancelled", "retried"
STATUSES = (SUCCEEDED, FAILED, CANCELLED, RETRIED)


#: Numbers the runs of this process: ``run_observed`` gives each run its own, so an observer can tell two
#: runs of one job apart (fan-out segments of one job may run at once in one worker).
_RUNS = itertools.count(1)


@dataclass(frozen=True)
class JobRef:
    """What an observer knows of a job: its id, its tier (``none`` for a CLI run without one), the device
    it asked for, and which run of this process it is (``run_observed`` sets ``run``; 0 outside one).

    Observers keep per-run state by ``(id, run)``, never by thread: a run's progress snapshots arrive from
    whichever inference lane finished the batch, so one run speaks from several threads."""

    id: str
    tier: str
    device: str
    run: int = 0


def job_id_for(output: str) -> str:
    """A run outside the worker is a job named after its output's file name (what an operator recognises in
    a dashboard): a one-file CLI run and each file of a folder run alike."""
    return posixpath.basename(output.split("?", 1)[0]) or output


class Observer(Protocol):
    """Hears about jobs. ``job_progress`` runs on an inference lane after every batch (one call at a time):
    it must be cheap and do no I/O."""

    def job_started(self, job: JobRef) -> None: ...

    def job_progress(self, job: JobRef, progress: Progress) -> None: ...

    def job_finished(
        self, job: JobRef, status: str, seconds: float, result: UpscaleResult | None
    ) -> None: ...


def run_observed(
    job: JobRef,
    observers: Sequence[Observer],
    source: str,
    destination: str,
    options: UpscaleOptions,
    *,
    progress: ProgressCallback | None = None,
    classify: Callable[[BaseException], str] | None = None,
    **upscale_kwargs: Any,
) -> UpscaleResult:
    """``upscale(...)`` with every observer told of its start, its snapshots and its end.

    ``classify(error) -> status`` lets a face say how a failure counts (the worker calls a transient error
    ``retried``); by default a ``Cancelled`` run is ``cancelled`` and any other error ``failed``.
    """
    from streamup.pipeline import upscale

    job = dataclasses.replace(job, run=next(_RUNS))

    def on_progress(snapshot: Progress) -> None:
        for o in observers:
            o.job_progress(job, snapshot)
        if progress is not None:
            progress(snapshot)

    for o in observers:
        o.job_started(job)
    start = time.perf_counter()
    try:
        result = upscale(source, destination, options, progress=on_progress, **upscale_kwargs)
    except BaseException as e:
        if classify is not None:
            status = classify(e)
        else:
            status = CANCELLED if isinstance(e, (Cancelled, KeyboardInterrupt)) else FAILED
        for o in observers:
            o.job_finished(job, status, time.perf_counter() - start, None)
        raise
    for o in observers:
        o.job_finished(job, SUCCEEDED, result.seconds, result)
    return result
