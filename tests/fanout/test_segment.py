"""Segments on S3 (moto in server mode on 127.0.0.1): published exclusively, recorded once, reused, and
stitched into a fragmented mp4 whose work folder is gone afterwards."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import pytest

from streamup.fanout.inprocess import open_plan, run_local
from streamup.fanout.segment import run_segment
from streamup.observe import JobRef
from streamup.options import UpscaleOptions
from tests.fanout import probe
from tests.storage.conftest import S3, s3, s3_server  # noqa: F401  # the storage tests' moto fixtures

OPTIONS = UpscaleOptions(model="lanczos", codec="ffv1")
JOB = JobRef("seg", "none", "cpu")


def test_the_same_segment_twice_gives_one_object_and_one_record(s3: S3, clips: dict[str, Path]) -> None:  # noqa: F811
    src = s3.put("in/clip.mp4", clips["bframes.mp4"])
    plan, area, made = open_plan(src, s3.uri("out/clip.mkv"), OPTIONS, Fraction(1))
    assert made and open_plan(src, s3.uri("out/clip.mkv"), OPTIONS, Fraction(1))[2] is False
    results: list[tuple[dict, bool]] = []
    runs = [threading.Thread(target=lambda: results.append(
        run_segment(plan, area, 1, OPTIONS, job=JOB))) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    segment_key = area.segment(1).split("/", 3)[3]
    etag = s3.client.head_object(Bucket=s3.bucket, Key=segment_key)["ETag"]
    again, worked = run_segment(plan, area, 1, OPTIONS, job=JOB)  # a third delivery, after both
    assert not worked and s3.client.head_object(Bucket=s3.bucket, Key=segment_key)["ETag"] == etag
    assert results[0][0] == results[1][0] == again  # one record, whoever wrote it
    assert again["frames"] == plan.segments[1].frames and again["codec"] == "ffv1"
    assert [k for k in s3.keys() if k.endswith(".mkv")] == [segment_key]  # noqa: SIM118  # a listing
    assert s3.uploads() == []  # the loser of the race aborted its upload


def test_stitch_on_s3_writes_fragmented_mp4_and_cleans_up(s3: S3, clips: dict[str, Path],  # noqa: F811
                                                          tmp_path: Path) -> None:
    src = s3.put("in/clip.mp4", clips["opengop.mp4"])
    run_local(src, s3.uri("out/clip_x2.mp4"), UpscaleOptions(model="lanczos"), Fraction(1), job=JOB)
    out = tmp_path / "out.mp4"
    out.write_bytes(s3.get("out/clip_x2.mp4"))
    assert s3.keys() == ["in/clip.mp4", "out/clip_x2.mp4"]  # plan, segments, records deleted
    assert b"moof" in out.read_bytes()[:200_000]  # fragmented: the sink cannot seek back
    assert probe.video_pts(out) == pytest.approx(probe.video_pts(clips["opengop.mp4"]), abs=0.001)
    assert probe.audio_md5(out) == probe.audio_md5(clips["opengop.mp4"])
    assert probe.decode_errors(out) == ""
