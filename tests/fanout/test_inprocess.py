"""A fanned-out run against a single run of the same job, judged by ffmpeg: lossless output identical frame
for frame; the default encoder within its quality, every timestamp and every audio byte kept."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from streamup.cli import _parser, options_from_args
from streamup.engine import tiling
from streamup.errors import UsageError
from streamup.fanout.inprocess import open_plan, run_local
from streamup.fanout.segment import run_segment
from streamup.observe import JobRef
from streamup.options import UpscaleOptions
from streamup.pipeline import Progress, upscale
from tests.fanout import probe

JOB = JobRef("local", "none", "cpu")
STREAMUP = Path(sys.executable).with_name("streamup")  # the console script installed beside this Python


def _both(src: Path, folder: Path, ext: str, options: UpscaleOptions, seconds: Fraction) -> tuple[Path, Path]:
    fanned, single = folder / f"fanned{ext}", folder / f"single{ext}"
    result = run_local(str(src), str(fanned), options, seconds, job=JOB)
    upscale(str(src), str(single), options)
    assert result.frames == len(probe.video_pts(src))
    assert not list(folder.glob(".*.fanout*")), "segments left behind"
    return fanned, single


@pytest.mark.parametrize("name", ["opengop.mp4", "two_audio.mkv"])
def test_lossless_fan_out_is_identical_to_a_single_run(clips: dict[str, Path], tmp_path: Path,
                                                       name: str) -> None:
    fanned, single = _both(clips[name], tmp_path, ".mkv", UpscaleOptions(model="lanczos", codec="ffv1"),
                           Fraction(1))
    assert probe.frame_hashes(fanned) == probe.frame_hashes(single)  # same pts, same pixels, same count
    assert probe.audio_md5(fanned) == probe.audio_md5(single) == probe.audio_md5(clips[name])


@pytest.mark.parametrize(("name", "ext"), [
    ("bframes.mp4", ".mp4"), ("opengop.mp4", ".mp4"), ("ntsc.mp4", ".mp4"), ("vfr.mp4", ".mp4"),
    ("two_audio.mkv", ".mkv"), ("rotated.mp4", ".mp4"), ("hevc10.mp4", ".mp4"),  # 10-bit: x265 segments
])
def test_default_encoder_keeps_timestamps_audio_and_quality(clips: dict[str, Path], tmp_path: Path, name: str,
                                                            ext: str) -> None:
    src = clips[name]
    fanned, single = _both(src, tmp_path, ext, UpscaleOptions(model="lanczos"), Fraction(1))
    want, got = probe.video_pts(src), probe.video_pts(fanned)
    assert len(got) == len(want)
    assert max(abs(a - b) for a, b in zip(want, got, strict=True)) <= 0.001
    assert probe.audio_md5(fanned) == probe.audio_md5(src)
    assert probe.psnr(single, fanned) >= 45
    assert probe.decode_errors(fanned) == ""
    assert probe.rotation(fanned) == probe.rotation(src)


def test_segments_shorter_than_a_gop_and_a_video_shorter_than_a_segment(clips: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    src = clips["bframes.mp4"]
    for seconds in (Fraction(1, 4), Fraction(60)):
        out = tmp_path / f"out-{seconds.denominator}.mkv"
        run_local(str(src), str(out), UpscaleOptions(model="lanczos", codec="ffv1"), seconds, job=JOB)
        assert probe.video_pts(out) == pytest.approx(probe.video_pts(src), abs=0.001)


@pytest.mark.slow
def test_a_fanned_out_run_adds_up_its_segments_reuse(clips: dict[str, Path], tmp_path: Path) -> None:
    """The real model on one still picture, three 1 s segments: each segment starts fresh (its first frame's
    tiles computed), and the whole run's result and snapshots carry the three segments' counts, not the
    last one's (or none)."""
    grid = len(tiling.plan(90, 160, 64, tiling.DEFAULT_PAD))
    snapshots: list[Progress] = []
    result = run_local(str(clips["still.mp4"]), str(tmp_path / "out.mkv"),
                       UpscaleOptions(scale=2, tile=64, codec="ffv1"), Fraction(1), job=JOB,
                       progress=snapshots.append)
    assert result.frames == 72
    assert result.tiles_computed + result.tiles_reused == 72 * grid  # every tile of every frame, once
    assert result.tiles_computed >= 3 * grid and result.frames_reused >= 3 * 20
    last = snapshots[-1]
    assert (last.frames_done, last.frames_reused, last.tiles_reused, last.tiles_computed) == \
        (72, result.frames_reused, result.tiles_reused, result.tiles_computed)
    counts = [(p.frames_reused, p.tiles_reused, p.tiles_computed) for p in snapshots]
    assert all(a <= b for earlier, later in itertools.pairwise(counts)
               for a, b in zip(earlier, later, strict=True))  # never back to a segment's own count


def test_unsplittable_output_is_a_usage_error_with_the_reason(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not known to concatenate"):
        run_local(str(clips["bframes.mp4"]), str(tmp_path / "o.mkv"),
                  UpscaleOptions(model="lanczos", codec="libvpx-vp9"), Fraction(1), job=JOB)


def test_command_line_segment_seconds_resumes_from_finished_segments(clips: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    """``streamup upscale --segment-seconds``: segment 0 left by an interrupted run is reused, not redone."""
    src, out = clips["bframes.mp4"], tmp_path / "out.mkv"
    argv = ["upscale", str(src), str(out), "--model", "lanczos", "--codec", "ffv1", "--segment-seconds", "1"]
    options = options_from_args(_parser().parse_args(argv))  # what the command will build
    plan, area, _ = open_plan(str(src), str(out), options, Fraction(1))
    run_segment(plan, area, 0, options, job=JOB)  # the interrupted run got this far
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(STREAMUP), *argv, "--log-format", "json", "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    segments = [(r["segment"], r["status"]) for r in records if r.get("event") == "segment"]
    assert (0, "reused") in segments and (0, "done") not in segments and (2, "done") in segments
    assert probe.video_pts(out) == pytest.approx(probe.video_pts(src), abs=0.001)
    assert not area.exists(area.root)  # the work folder is gone after the stitch
