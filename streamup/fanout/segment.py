"""One segment: upscale the frames of a pts range into a video-only Matroska object, then record it.

Why Matroska: the segment is written while it is encoded, to S3 (a sink that cannot seek back), and Matroska
streams as it is, keeps the source's absolute timestamps with signed offsets (the B-frame delay needs no edit
list, the first segment's AAC-priming-shifted clock survives), and holds H.264, HEVC and FFV1. Its clock has
1 ms steps; the record keeps the exact pts (from the plan), and the stitcher puts them back.

The segment object is published exclusively (``upscale(exclusive=True)``), so a duplicate delivery finds it
before any work, or loses the race at the end; either way one object. The record is written after the
object, so a record always means a complete segment; a run killed between the two leaves a segment without a
record, and the next delivery writes the record without upscaling again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from streamup.errors import InputError, OutputExists
from streamup.fanout.plan import Plan
from streamup.fanout.workarea import WorkArea
from streamup.observe import JobRef, Observer, run_observed
from streamup.options import UpscaleOptions
from streamup.pipeline import ProgressCallback, UpscaleResult
from streamup.pipeline.remux import header_of

log = logging.getLogger("streamup")

RECORD_VERSION = 1
#: A segment's reuse counts in its record (record key: ``UpscaleResult`` field), so a whole job's counts add
#: up from its records.
REUSE_FIELDS = {"framesReused": "frames_reused", "tilesReused": "tiles_reused",
                "tilesComputed": "tiles_computed"}


def reuse_counts(record: dict[str, Any]) -> dict[str, int]:
    """A segment record's reuse counts by ``UpscaleResult`` field (0 where its maker did not record them)."""
    return {field: int(record.get(name) or 0) for name, field in REUSE_FIELDS.items()}


def run_segment(
    plan: Plan,
    area: WorkArea,
    index: int,
    options: UpscaleOptions,
    *,
    job: JobRef,
    observers: Sequence[Observer] = (),
    upscaler: Any = None,
    cancel: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[dict[str, Any], bool]:
    """Make segment ``index`` unless it exists; returns (its record, whether this call upscaled it)."""
    segment = plan.segments[index]
    existing = area.read(area.record(index))
    if existing is not None:
        _log_done(plan, index, job, None)
        return existing, False
    area.prepare()
    uri = area.segment(index)
    result: UpscaleResult | None = None
    t0 = time.perf_counter()
    log.info("segment %d/%d of %s: %d frames", index + 1, len(plan.segments), job.id, segment.frames,
             extra={"fields": {"event": "segment", "status": "started", "job": job.id, "segment": index}})
    try:
        result = run_observed(job, observers, plan.source, uri, options, upscaler=upscaler, cancel=cancel,
                              progress=progress,
                              span=segment.span(plan.time_base), exclusive=True,
                              metadata={"job-key": plan.key, "segment": str(index)})
        if result.frames != segment.frames:
            raise InputError(f"segment {index} decoded {result.frames} frames where the source has "
                             f"{segment.frames}; it cannot be cut at its keyframes")
    except OutputExists:
        pass  # another delivery of this segment published it: use theirs
    worked = result is not None
    codec, digest, reorder = header_of(uri)
    record = {"version": RECORD_VERSION, "key": plan.key, "index": index, "of": len(plan.segments),
              "frames": segment.frames, "firstPts": segment.pts[0] if segment.pts else None,
              "lastPts": segment.pts[-1] if segment.pts else None, "timeBase": str(plan.time_base),
              "codec": codec, "header": digest, "reorderDepth": reorder,
              "seconds": round(time.perf_counter() - t0, 3) if worked else None,
              **({name: getattr(result, field) for name, field in REUSE_FIELDS.items()} if result else {})}
    if not area.create(area.record(index), record):
        record = area.read(area.record(index)) or record
    _log_done(plan, index, job, time.perf_counter() - t0 if worked else None)
    return record, worked


def _log_done(plan: Plan, index: int, job: JobRef, seconds: float | None) -> None:
    """``seconds`` None: the segment was there already (another delivery, or an earlier run, made it)."""
    log.info("segment %d/%d of %s %s", index + 1, len(plan.segments), job.id,
             "was there already" if seconds is None else f"upscaled in {seconds:.1f} s",
             extra={"fields": {"event": "segment", "status": "reused" if seconds is None else "done",
                               "job": job.id, "segment": index}})
