"""The plan: cuts only at keyframes, from packets alone; every frame in exactly one segment."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from streamup.fanout.plan import NotSplittable, Plan, check_encoder, job_key, make_plan
from streamup.options import UpscaleOptions
from tests.conftest import media


def _keyframes(path: Path) -> tuple[list[int], list[int]]:
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
        return sorted(p.pts for p in packets), sorted(p.pts for p in packets if p.is_keyframe)


@pytest.mark.parametrize("name", ["bframes.mp4", "opengop.mp4", "ntsc.mp4", "vfr.mp4"])
def test_segments_start_at_keyframes_and_hold_every_frame_once(clips: dict[str, Path], name: str) -> None:
    pts, keys = _keyframes(clips[name])
    plan = make_plan(str(clips[name]), "out.mkv", "k", Fraction(1))
    starts = [s.start for s in plan.segments[1:]]
    assert len(plan.segments) >= 3 and set(starts) <= set(keys)
    gaps = [(b - a) * plan.time_base for a, b in zip([pts[0], *starts], starts, strict=False)]
    assert all(g >= 1 for g in gaps)  # the first keyframe at least a segment after the previous cut
    assert plan.segments[0].start is None and plan.segments[-1].end is None
    assert [p for s in plan.segments for p in s.pts] == pts
    for s in plan.segments:
        assert all((s.start is None or p >= s.start) and (s.end is None or p < s.end) for p in s.pts)


def test_segments_shorter_than_a_gop_cut_at_every_keyframe(clips: dict[str, Path]) -> None:
    _, keys = _keyframes(clips["bframes.mp4"])
    plan = make_plan(str(clips["bframes.mp4"]), "out.mkv", "k", Fraction(1, 4))
    assert [s.start for s in plan.segments] == [None, *keys[1:]]


def test_a_video_shorter_than_one_segment_is_one_segment(clips: dict[str, Path]) -> None:
    plan = make_plan(str(clips["bframes.mp4"]), "out.mkv", "k", Fraction(10))
    assert len(plan.segments) == 1 and plan.segments[0].frames == 72


def test_plan_round_trips_through_json(clips: dict[str, Path]) -> None:
    plan = make_plan(str(clips["ntsc.mp4"]), "out.mkv", "k", Fraction(1))
    assert Plan.from_data(plan.to_data()) == plan
    assert plan.time_base == Fraction(1, 30000)


def test_job_key_is_deterministic_and_follows_settings(clips: dict[str, Path]) -> None:
    src = str(clips["bframes.mp4"])
    a = job_key(src, "o.mp4", UpscaleOptions(model="lanczos"), Fraction(10))
    assert a == job_key(src, "o.mp4", UpscaleOptions(model="lanczos"), Fraction(10))
    assert a != job_key(src, "o.mp4", UpscaleOptions(model="lanczos", crf=20), Fraction(10))
    assert a != job_key(src, "o.mp4", UpscaleOptions(model="lanczos"), Fraction(5))


def test_vp9_and_other_encoders_are_refused_with_a_reason() -> None:
    with pytest.raises(NotSplittable, match="libvpx-vp9 segments are not known to concatenate"):
        check_encoder("libvpx-vp9", ".mkv", None)
    with pytest.raises(NotSplittable, match="neither x264 nor x265"):
        make_plan(str(media("main_h264_aac_640x360.mp4")), "out.webm", "k", Fraction(1))
    make_plan(str(media("hevc_main10_bt709.mp4")), "out.mp4", "k", Fraction(1))  # 10-bit: x265, stitchable
    for codec in ("libx264", "libx265", "ffv1"):
        check_encoder(codec, ".mkv", None)
