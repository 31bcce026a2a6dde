"""Observers hear a job's start, every snapshot and its end, with the status a face gives it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from streamup.engine.lanczos import LanczosUpscaler
from streamup.errors import Cancelled, InputError
from streamup.observe import CANCELLED, FAILED, RETRIED, SUCCEEDED, JobRef, run_observed
from streamup.options import UpscaleOptions
from tests.conftest import media

JOB = JobRef(id="job-1", tier="none", device="cpu")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def job_started(self, job: JobRef) -> None:
        self.events.append(("started", job.id))

    def job_progress(self, job: JobRef, progress: object) -> None:
        self.events.append(("progress", progress.frames_done))  # type: ignore[attr-defined]

    def job_finished(self, job: JobRef, status: str, seconds: float, result: object) -> None:
        self.events.append((status, getattr(result, "frames", None)))


def test_every_observer_hears_start_snapshots_and_success(tmp_path: Path) -> None:
    a, b = Recorder(), Recorder()
    seen: list[int] = []
    result = run_observed(JOB, [a, b], str(media("noaudio_h264.mp4")), str(tmp_path / "out.mkv"),
                          UpscaleOptions(scale=2), upscaler=LanczosUpscaler(2),
                          progress=lambda p: seen.append(p.frames_done))
    assert a.events == b.events
    assert a.events[0] == ("started", "job-1") and a.events[-1] == (SUCCEEDED, result.frames)
    snapshots = [n for kind, n in a.events if kind == "progress"]
    assert snapshots == seen and snapshots[-1] == result.frames and snapshots == sorted(snapshots)


def test_failures_are_reported_once_with_their_status_and_still_raised(tmp_path: Path) -> None:
    rec = Recorder()
    with pytest.raises(InputError):
        run_observed(JOB, [rec], str(tmp_path / "missing.mp4"), str(tmp_path / "o.mkv"), UpscaleOptions())
    assert rec.events == [("started", "job-1"), (FAILED, None)]

    rec = Recorder()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        run_observed(JOB, [rec], str(media("noaudio_h264.mp4")), str(tmp_path / "o.mkv"), UpscaleOptions(),
                     upscaler=LanczosUpscaler(2), cancel=cancel)
    assert rec.events[-1] == (CANCELLED, None)

    rec = Recorder()
    with pytest.raises(InputError):
        run_observed(JOB, [rec], str(tmp_path / "missing.mp4"), str(tmp_path / "o.mkv"), UpscaleOptions(),
                     classify=lambda e: RETRIED)
    assert rec.events[-1] == (RETRIED, None)
    assert list(tmp_path.iterdir()) == []
