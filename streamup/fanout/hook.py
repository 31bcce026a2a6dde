"""The queue worker's hook: a long job becomes segment jobs on the same queue, the last one stitches.

The fleet is the distributed engine; nothing here schedules. A *parent* job (a normal message whose
``parameters.segmentSeconds`` is set, or whose source is longer than ``STREAMUP_FANOUT_ABOVE_SECONDS``) is
planned and answered with one message per segment on the worker's own queue: each is the parent's message
plus ``"segment": {"key", "index"}``, so it gets the queue's visibility heartbeat, retries and dead-letter
queue like any job. Any worker takes them; each upscales its segment (``segment.run_segment``) and then
looks whether all are recorded. Whoever finds them all claims the stitch by creating ``stitch.json``
exclusively; the claim names the message, so if that worker dies mid-stitch the same message comes back
and its next holder stitches. The stitched output is published exclusively with the job id, as a single
run's, so the worker's own duplicate check answers a re-sent parent or a late segment after success.

Status, all under the parent's job id: RUNNING when planned (with how many segments exist already),
PROGRESS after each segment (the share of all frames whose segment is recorded), SUCCEEDED after the stitch,
FAILED once: the first permanent segment failure creates ``failed.json`` exclusively, and only that
creator sends the event; the other segments then end quietly.

It is a worker job hook (``streamup.worker.hooks``), plugged in by ``streamup.cli``; it never touches the
queue. The segment messages it wants sent go back in its answer (``Handled.sends``) and the worker's consumer
sends them through its job queue before it deletes the parent message: a worker killed in between sends
them again on redelivery, and the duplicates find their segments done. The job's model is asked for
(``context.upscaler()``) only when a segment runs or the stitch names it, so a parent is planned without
loading a model.
"""

from __future__ import annotations

import logging
import time
from fractions import Fraction
from typing import Any

from streamup.config import Config
from streamup.errors import Cancelled, OutputExists
from streamup.fanout.inprocess import open_plan
from streamup.fanout.plan import NotSplittable, Plan
from streamup.fanout.segment import run_segment
from streamup.fanout.stitch import stitch
from streamup.fanout.workarea import WorkArea
from streamup.observe import JobRef
from streamup.pipeline.probe import probe
from streamup.worker import events
from streamup.worker.failures import classify
from streamup.worker.hooks import Handled, JobContext
from streamup.worker.jobs import InvalidJob, Job
from streamup.worker.queue import Message

log = logging.getLogger("streamup")


def handle(job: Job, context: JobContext) -> Handled | None:
    """Run a segment message, or plan a parent job; None: an ordinary job, the worker runs it itself (the
    ``JobHook`` protocol)."""
    ref = JobRef(job.id, job.tier, job.device)
    if "segment" in job.message:
        key, index = _segment_field(job.message["segment"], job.id)
        area = WorkArea(job.destination, key, context.config.work_prefix)
        stored = area.read(area.uri("plan.json"))
        if stored is None:
            raise InvalidJob(f"segment {index} of job {job.id}: no plan {key} "
                             "(the job finished or never began)", job.id)
        plan = Plan.from_data(stored)
        if not 0 <= index < len(plan.segments):
            raise InvalidJob(f"segment {index} is not in plan {key} ({len(plan.segments)} segments)", job.id)
        return _run_segment(plan, area, index, ref, context)
    seconds = _segment_seconds(job, context.config)
    if seconds is None:
        return None
    try:
        plan, area, made = open_plan(job.source, job.destination, context.options, seconds,
                                     context.config.work_prefix)
    except NotSplittable as e:
        log.warning("job %s runs as one job: cannot fan out (%s)", job.id, e,
                    extra={"fields": {"event": "fanout", "job": job.id, "status": "refused",
                                      "reason": str(e)}})
        return None
    if len(plan.segments) < 2:  # shorter than two segments: an ordinary job, and no plan left behind
        area.remove()
        return None
    if (failed := area.read(area.uri("failed.json"))) is not None:
        return Handled(events.event(job.id, events.FAILED, 0, error=failed["error"]))
    done = [s for s in plan.segments if area.exists(area.record(s.index))]
    missing = [s.index for s in plan.segments if s not in done]
    log.info("job %s fanned out: %d segments of ~%s s (%s), %d already done", job.id, len(plan.segments),
             seconds, "new plan" if made else "plan reused", len(done),
             extra={"fields": {"event": "fanout", "job": job.id, "segments": len(plan.segments),
                               "reused": len(done)}})
    if not missing:  # every segment is there (a re-sent parent after a lost stitch): stitch now
        return _finish(plan, area, ref, context)
    step = events.progress_step(sum(s.frames for s in done) / max(1, plan.frames))
    sends = tuple(Message({**job.message, "segment": {"key": plan.key, "index": index}}, f"{job.id}-{index}")
                  for index in missing)
    return Handled(events.event(job.id, events.RUNNING, step, segments=len(plan.segments), reused=len(done)),
                   sends)


def _segment_field(value: Any, job_id: str) -> tuple[str, int]:
    if not isinstance(value, dict) or not isinstance(value.get("key"), str) or \
            not isinstance(value.get("index"), int) or isinstance(value.get("index"), bool):
        raise InvalidJob("segment must be {\"key\": string, \"index\": integer}", job_id)
    return value["key"], value["index"]


def _segment_seconds(job: Job, cfg: Config) -> Fraction | None:
    """``parameters.segmentSeconds`` (the parser checked it; 0: never fan out), else the automatic rule:
    a source longer than ``cfg.fanout_above_s`` in segments of ``cfg.segment_s``."""
    if job.segment_seconds is not None:
        return job.segment_seconds or None
    duration = probe(job.source).duration
    if duration is None or duration <= cfg.fanout_above_s:
        return None
    return cfg.segment_s


def _run_segment(plan: Plan, area: WorkArea, index: int, job: JobRef, context: JobContext) -> Handled:
    if area.exists(area.uri("failed.json")):
        return Handled(None)  # the job failed already (and said so once): nothing left to do
    try:
        run_segment(plan, area, index, context.options, job=job, observers=context.observers,
                    upscaler=context.upscaler(), cancel=context.cancel)
    except Cancelled:
        raise
    except Exception as e:
        return _fail_once(area, job, index, e)
    done = sum(s.frames for s in plan.segments if area.exists(area.record(s.index)))
    if done < plan.frames:
        step = min(95, events.progress_step(done / plan.frames))
        return Handled(events.event(job.id, events.PROGRESS, step, segment=index))
    return _finish(plan, area, job, context)


def _finish(plan: Plan, area: WorkArea, job: JobRef, context: JobContext) -> Handled:
    """Stitch if this message holds (or wins) the claim; anyone else ends here."""
    claim, owner = area.uri("stitch.json"), context.message_id
    if not area.create(claim, {"owner": owner, "at": time.time()}):
        holder = area.read(claim) or {}
        if holder.get("owner") != owner:
            return Handled(None)  # another message stitches
    upscaler = context.upscaler()
    try:
        stitched = stitch(plan, area, exclusive=True, cancel=context.cancel, metadata={
            "job-id": job.id, "device-used": upscaler.device, "source": plan.source, "model": upscaler.name,
            "scale": str(upscaler.scale), "segments": str(len(plan.segments))})
    except OutputExists as e:
        if e.metadata.get("job-id") != job.id:
            return _fail_once(area, job, -1, e)
    except Cancelled:
        raise
    except Exception as e:
        return _fail_once(area, job, -1, e)
    else:
        log.info("job %s stitched: %d segments, %d frames in %.1f s", job.id, len(plan.segments),
                 stitched.frames, stitched.seconds,
                 extra={"fields": {"event": "stitch", "job": job.id, "frames": stitched.frames,
                                   "seconds": round(stitched.seconds, 3)}})
    area.remove()
    return Handled(events.event(job.id, events.SUCCEEDED, 100, outputUri=plan.destination, frames=plan.frames,
                                seconds=round(time.time() - plan.created, 3),
                                deviceUsed=events.device_used(upscaler.device), segments=len(plan.segments)))


def _fail_once(area: WorkArea, job: JobRef, index: int, error: Exception) -> Handled:
    """A transient error goes back to the worker (retry, then the DLQ); the first permanent one fails the
    parent, and only its reporter sends FAILED."""
    failure = classify(error)
    if not failure.permanent:
        raise error
    where = f"segment {index}" if index >= 0 else "stitch"
    error_field = {"code": failure.code, "message": f"{where}: {failure.message}", "permanent": True}
    if not area.create(area.uri("failed.json"), {"segment": index, "error": error_field}):
        return Handled(None)
    log.warning("job %s failed in %s: %s", job.id, where, failure.message,
                extra={"fields": {"event": "fanout", "job": job.id, "status": "failed",
                                  "code": failure.code}})
    return Handled(events.event(job.id, events.FAILED, 0, error=error_field))
