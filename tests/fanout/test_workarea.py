"""A job's work area beside its output, on the filesystem and on the real moto S3 endpoint: where it lives,
JSON objects created once and read back, and nothing left of it after ``remove``."""

from __future__ import annotations

from pathlib import Path

from streamup import config
from streamup.config import Config
from streamup.fanout.workarea import WorkArea
from tests.storage.conftest import S3, s3, s3_server  # noqa: F401  # the storage tests' moto fixtures


def test_a_local_work_area_is_one_hidden_folder_beside_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    area = WorkArea(str(out), "k1")
    assert area.key == "k1"
    assert area.root == str(tmp_path / ".out.mkv.fanout-k1")
    assert area.segment(3) == str(tmp_path / ".out.mkv.fanout-k1" / "seg-00003.mkv")
    assert area.record(3) == str(tmp_path / ".out.mkv.fanout-k1" / "seg-00003.json")
    area.prepare()
    assert Path(area.root).is_dir()
    assert area.create(area.uri("plan.json"), {"segments": [1, 2]})
    assert not area.create(area.uri("plan.json"), {"segments": []}), "a second creator learns it lost"
    assert area.read(area.uri("plan.json")) == {"segments": [1, 2]}
    assert area.exists(area.uri("plan.json")) and area.exists(area.root)
    assert area.read(area.record(0)) is None and not area.exists(area.record(0))
    area.remove()
    assert list(tmp_path.iterdir()) == [], "nothing of the job is left beside the output"
    area.remove()  # twice (a re-sent job after success): no error


def test_an_s3_work_area_lives_under_the_work_prefix_of_the_output_bucket(s3: S3) -> None:  # noqa: F811
    prefix = Config.from_environ({config.WORK_PREFIX: "/jobs/"}).work_prefix
    s3.client.put_object(Bucket=s3.bucket, Key="out/clip.mp4", Body=b"an earlier output")
    area = WorkArea(s3.uri("out/clip.mp4"), "k1", prefix)
    assert area.root == s3.uri("jobs/k1")
    assert area.segment(0) == s3.uri("jobs/k1/seg-00000.mkv")
    area.prepare()
    assert area.create(area.record(0), {"frames": 24})
    assert area.create(area.uri("stitch.json"), {"owner": "m1"})
    assert not area.create(area.uri("stitch.json"), {"owner": "m2"})
    assert area.read(area.uri("stitch.json")) == {"owner": "m1"}
    assert area.exists(area.record(0)) and not area.exists(area.record(1))
    assert area.read(area.record(1)) is None
    assert sorted(s3.keys()) == ["jobs/k1/seg-00000.json", "jobs/k1/stitch.json", "out/clip.mp4"]
    assert s3.client.head_object(Bucket=s3.bucket, Key="jobs/k1/stitch.json")["ContentType"] == \
        "application/json"
    area.remove()
    assert s3.keys() == ["out/clip.mp4"]
