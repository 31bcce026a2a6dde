"""A fanned-out job in one process (``streamup upscale --segment-seconds S``): the fleet's steps in a row.

Plan, every segment, stitch, clean up: the very code the workers run, on one machine. Worth it for a long
local run: an interrupted run (Ctrl-C, a crash, a reboot) keeps its finished segments beside the output
and the same command carries on from there; and it is how the fan-out is tested and measured without a
queue.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from fractions import Fraction

from streamup import config
from streamup.config import Config
from streamup.errors import UsageError
from streamup.fanout.plan import NotSplittable, Plan, job_key, make_plan
from streamup.fanout.segment import reuse_counts, run_segment
from streamup.fanout.stitch import stitch
from streamup.fanout.workarea import WorkArea
from streamup.observe import JobRef, Observer
from streamup.options import UpscaleOptions
from streamup.pipeline import Progress, ProgressCallback, UpscaleResult, build_upscaler


def open_plan(source: str, destination: str, options: UpscaleOptions, segment_seconds: Fraction,
              prefix: str = config.WORK_PREFIX_DEFAULT) -> tuple[Plan, WorkArea, bool]:
    """The job's plan, made and stored on first use, read back when a delivery before this one made it;
    returns (plan, its work area, whether this call made it). ``NotSplittable`` when it cannot be fanned out.
    """
    key = job_key(source, destination, options, segment_seconds)
    area = WorkArea(destination, key, prefix)
    stored = area.read(area.uri("plan.json"))
    if stored is not None:
        return Plan.from_data(stored), area, False
    plan = make_plan(source, destination, key, segment_seconds, options.codec)
    made = area.create(area.uri("plan.json"), plan.to_data())
    if not made:  # another delivery stored it first: theirs is the same cut, use it
        stored = area.read(area.uri("plan.json"))
        plan = Plan.from_data(stored) if stored is not None else plan
    return plan, area, made


def run_local(
    source: str,
    destination: str,
    options: UpscaleOptions,
    segment_seconds: Fraction,
    *,
    job: JobRef,
    observers: Sequence[Observer] = (),
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    config: Config | None = None,
) -> UpscaleResult:
    """Upscale ``source`` segment by segment and stitch ``destination``; finished segments are reused.
    ``config`` is the environment read once (None: read it now)."""
    cfg = config or Config.from_environ()
    t0 = time.perf_counter()
    if segment_seconds <= 0:
        raise UsageError(f"segment length must be positive, got {float(segment_seconds)} s")
    try:
        plan, area, _ = open_plan(source, destination, options, segment_seconds, cfg.work_prefix)
    except NotSplittable as e:
        raise UsageError(f"{source} cannot be upscaled in segments: {e}") from None
    upscaler = build_upscaler(options, cfg)
    done, reuse = 0, Counter(reuse_counts({}))
    for segment in plan.segments:
        elapsed = time.perf_counter() - t0
        on_progress = _offset(progress, done, dict(reuse), plan.frames, elapsed) if progress else None
        record, _ = run_segment(plan, area, segment.index, options, job=job, observers=observers,
                                upscaler=upscaler, cancel=cancel, progress=on_progress)
        done += segment.frames
        reuse.update(reuse_counts(record))
    stitched = stitch(plan, area, metadata={"source": source, "model": upscaler.name,
                                             "scale": str(upscaler.scale)}, cancel=cancel)
    area.remove()
    seconds = time.perf_counter() - t0
    return UpscaleResult(
        source=source, destination=destination, model=upscaler.name, scale=upscaler.scale,
        frames=stitched.frames, seconds=seconds, fps=stitched.frames / seconds if seconds > 0 else 0.0,
        output=stitched.output, stage_busy_s={"stitch": stitched.seconds}, device=upscaler.device,
        precision=upscaler.precision,
        video_seconds=plan.duration, bytes_written=stitched.bytes_written, **reuse)


def _offset(progress: ProgressCallback, before: int, reused: Mapping[str, int], total: int,
            elapsed: float) -> ProgressCallback:
    """A segment's snapshots as the whole job's: frames and reuse counts of earlier segments added, the
    plan's total."""

    def report(p: Progress) -> None:
        frames = before + p.frames_done
        seconds = elapsed + p.elapsed_s
        fps = frames / seconds if seconds > 0 else 0.0
        progress(dataclasses.replace(p, frames_done=frames, frames_total=total, elapsed_s=seconds, fps=fps,
                                     eta_s=(total - frames) / fps if fps > 0 else None,
                                     **{field: count + getattr(p, field) for field, count in reused.items()}))

    return report
