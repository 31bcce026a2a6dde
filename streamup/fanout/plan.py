"""The plan of a fanned-out job: where the source is cut, read from its packets alone (nothing is decoded).

A cut may only fall on a keyframe: a segment's worker seeks there and decodes forward, so its pre-roll is
nothing at all (the keyframe is the segment's first frame) and every frame it keeps decodes exactly as in a
run over the whole file. Cuts are chosen greedily: the first keyframe at least ``segment_seconds`` after the
previous cut. A segment is the pts range [start, end) on the source's own timeline (``None``: open end) and
lists the pts of its frames, so a worker knows how many frames it must produce and the stitcher can restore
every timestamp exactly (segments are Matroska, whose clock has 1 ms steps).

Reading every video packet costs one pass over the source's bytes (ranged GETs on S3, no download): about a
second per 100 MB here, against minutes to hours of upscaling. The job's key is a hash of the source's
identity (S3 ETag, or size and mtime of a local file) and of every setting that changes the output, so a
job sent again finds the plan and the segments its first delivery left.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from streamup import storage
from streamup.errors import InputError
from streamup.options import UpscaleOptions
from streamup.pipeline.remux import VideoPackets, video_packets

PLAN_VERSION = 1
#: Video encoders whose separately encoded segments concatenate into one valid stream: x264 with
#: ``stitchable=1`` (headers that do not depend on the content), x265 (its VPS/SPS/PPS follow from the
#: settings alone, and every segment starts with an IDR picture, so no RASL picture refers across a cut;
#: the stitch checks the headers are equal) and FFV1 (intra only, fixed header).
STITCHABLE = ("libx264", "libx265", "ffv1")


class NotSplittable(Exception):
    """This source or output cannot be fanned out (the reason is the message); run it as one job."""


@dataclass(frozen=True)
class Segment:
    """Frames whose pts fall in [start, end) (``None``: open end), and their pts, ascending."""

    index: int
    start: int | None
    end: int | None
    pts: tuple[int, ...]

    @property
    def frames(self) -> int:
        return len(self.pts)

    def span(self, time_base: Fraction) -> tuple[Fraction | None, Fraction | None]:
        """[start, end) in seconds: what ``upscale(span=...)`` takes."""
        return (None if self.start is None else self.start * time_base,
                None if self.end is None else self.end * time_base)


@dataclass(frozen=True)
class Plan:
    """One job's cut of its source; serialised as ``plan.json`` beside its segments."""

    key: str
    source: str
    destination: str
    time_base: Fraction
    segment_seconds: Fraction
    duration: float
    segments: tuple[Segment, ...]
    created: float

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    def to_data(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION, "key": self.key, "source": self.source, "destination": self.destination,
            "timeBase": str(self.time_base), "segmentSeconds": str(self.segment_seconds),
            "duration": self.duration, "frames": self.frames, "created": self.created,
            "segments": [{"index": s.index, "start": s.start, "end": s.end, "pts": list(s.pts)}
                         for s in self.segments],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Plan:
        if data.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {data.get('version')!r}, want {PLAN_VERSION}")
        segments = tuple(Segment(s["index"], s["start"], s["end"], tuple(s["pts"])) for s in data["segments"])
        return cls(data["key"], data["source"], data["destination"], Fraction(data["timeBase"]),
                   Fraction(data["segmentSeconds"]), float(data["duration"]), segments,
                   float(data["created"]))


def job_key(source: str, destination: str, options: UpscaleOptions, segment_seconds: Fraction) -> str:
    """Deterministic: the same source object (by ETag) with the same settings gives the same key, so a job
    sent again reuses its plan and segments; a replaced source or any changed setting starts afresh."""
    identity = _identity(source)
    settings = {k: v for k, v in dataclasses.asdict(options).items() if k != "weights_dirs"}
    blob = json.dumps({"source": source, "identity": identity, "destination": destination,
                       "options": settings, "segmentSeconds": str(segment_seconds)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _identity(source: str) -> str:
    """The S3 ETag, a local file's size and mtime, or an https:// source's size (all a URL tells)."""
    if source.startswith(("http://", "https://")):
        with storage.open_source(source) as src:
            return str(src.size)
    info = storage.stat(source)
    if info is None:
        raise InputError(f"input not found: {source}")
    return info.etag or f"{info.size}-{os.stat(source).st_mtime_ns}"


def make_plan(source: str, destination: str, key: str, segment_seconds: Fraction,
              codec: str | None = None) -> Plan:
    """Cut ``source`` at keyframes into segments of about ``segment_seconds``; ``NotSplittable`` when its
    video cannot be cut safely (no timestamps, interlaced, frames closer than Matroska's 1 ms clock) or the
    output's encoder (``codec``, else the default for this source and container) cannot be stitched."""
    if segment_seconds <= 0:
        raise ValueError("segment_seconds must be positive")
    with video_packets(source) as video:
        if video.interlaced:
            raise NotSplittable("interlaced video: deinterlacing needs each field's neighbours")
        check_encoder(codec, storage.extension(destination), video.pixel_format)
        time_base = video.time_base
        pts, keys = _scan(video, source)
    duration = float((pts[-1] - pts[0]) * time_base) if pts else 0.0
    step = segment_seconds / time_base
    cuts: list[int] = []
    mark = pts[0] + step
    for k in keys:
        if k >= mark:
            cuts.append(k)
            mark = k + step
    bounds: list[int | None] = [None, *cuts, None]
    segments = []
    for i in range(len(bounds) - 1):
        lo = 0 if bounds[i] is None else bisect.bisect_left(pts, bounds[i])
        hi = len(pts) if bounds[i + 1] is None else bisect.bisect_left(pts, bounds[i + 1])
        segments.append(Segment(i, bounds[i], bounds[i + 1], tuple(pts[lo:hi])))
    return Plan(key, source, destination, time_base, segment_seconds, duration, tuple(segments), time.time())


def check_encoder(codec: str | None, extension: str, source_format: Any) -> None:
    """Refuse (``NotSplittable``) an output whose encoder cannot be stitched. Without ``codec`` the output
    gets the container's default: x264 for 8-bit YUV and x265 for deeper YUV in mp4/mov/mkv, both
    stitchable; RGB or alpha sources get other encoders, and webm gets VP9 (not shown to concatenate).
    """
    if codec is None:
        components = getattr(source_format, "components", None) or ()
        rgb = bool(getattr(source_format, "is_rgb", False))
        alpha = any(getattr(c, "is_alpha", False) for c in components)
        if extension == ".webm" or rgb or alpha:
            raise NotSplittable(f"the default encoder for this source in {extension or 'this container'} is "
                                f"neither x264 nor x265 (pass codec libx264 or ffv1 to fan it out)")
        return
    if codec not in STITCHABLE:
        raise NotSplittable(f"{codec} segments are not known to concatenate "
                            f"(fan-out takes {', '.join(STITCHABLE)})")


def _scan(video: VideoPackets, source: str) -> tuple[list[int], list[int]]:
    """Every video frame's pts (sorted) and the keyframes' pts, from the packets."""
    pts: list[int] = []
    keys: list[int] = []
    for packet_pts, keyframe in video.packets():
        if packet_pts is None:
            raise NotSplittable("video packets without timestamps")
        pts.append(packet_pts)
        if keyframe:
            keys.append(packet_pts)
    if not pts:
        raise InputError(f"no video frames in {source}")
    pts.sort()
    _check_millisecond_steps(pts, video.time_base)
    return pts, sorted(keys)


def _check_millisecond_steps(pts: Sequence[int], time_base: Fraction) -> None:
    """Segments are Matroska (1 ms clock): two frames in one millisecond could not be told apart."""
    ms = [round(p * time_base * 1000) for p in pts]
    if len(set(ms)) != len(ms) or len(set(pts)) != len(pts):
        raise NotSplittable("two video frames less than 1 ms apart")
