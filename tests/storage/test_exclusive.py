"""Exclusive outputs: a run that must never replace an existing object (a worker's at-least-once jobs).

Against the real moto endpoint and the real filesystem: an output that is already there is refused before
any work, with its metadata (so a worker can recognise its own earlier output); when two writers race, the
conditional publish (S3 ``If-None-Match: *``, a local ``link``) lets exactly one win and leaves nothing of
the loser behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streamup.errors import InputError, OutputError, OutputExists
from streamup.storage import check_sink, open_sink, stat
from tests.storage.conftest import S3


def test_stat_tells_size_metadata_and_absence(s3: S3, tmp_path: Path) -> None:
    s3.client.put_object(Bucket=s3.bucket, Key="a.mp4", Body=b"12345", Metadata={"job-id": "j1"})
    info = stat(s3.uri("a.mp4"))
    assert info is not None and (info.size, info.metadata) == (5, {"job-id": "j1"}) and info.etag
    assert stat(s3.uri("missing.mp4")) is None
    (tmp_path / "f.mp4").write_bytes(b"abc")
    assert stat(str(tmp_path / "f.mp4")).size == 3  # type: ignore[union-attr]
    assert stat(str(tmp_path / "none.mp4")) is None
    with pytest.raises(InputError, match=r"unsupported URI scheme gs://"):
        stat("gs://bucket/key.mp4")


def test_an_existing_s3_output_is_refused_before_any_work_with_its_metadata(s3: S3) -> None:
    s3.client.put_object(Bucket=s3.bucket, Key="out.mp4", Body=b"done", Metadata={"job-id": "j1"})
    check_sink(s3.uri("out.mp4"))  # not exclusive: replacing is allowed
    with pytest.raises(OutputExists) as caught:
        check_sink(s3.uri("out.mp4"), exclusive=True)
    assert caught.value.metadata == {"job-id": "j1"}
    assert s3.uploads() == []


def test_two_racing_s3_writers_publish_once(s3: S3) -> None:
    first = open_sink(s3.uri("out.mkv"), metadata={"job-id": "a"}, exclusive=True)
    second = open_sink(s3.uri("out.mkv"), metadata={"job-id": "b"}, exclusive=True)
    first.file.write(b"from a")
    second.file.write(b"from b")
    first.commit()
    with pytest.raises(OutputExists) as caught:
        second.commit()
    assert caught.value.metadata == {"job-id": "a"}
    assert s3.get("out.mkv") == b"from a"
    assert s3.uploads() == [], "the loser's multipart upload is aborted"


def test_a_non_exclusive_s3_writer_still_replaces(s3: S3) -> None:
    for body in (b"one", b"two"):
        sink = open_sink(s3.uri("out.mkv"))
        sink.file.write(body)
        sink.commit()
    assert s3.get("out.mkv") == b"two"


def test_two_racing_local_writers_publish_once(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    first, second = (open_sink(str(out), exclusive=True) for _ in range(2))
    first.file.write(b"from a")
    second.file.write(b"from b")
    first.commit()
    with pytest.raises(OutputExists, match="output already exists"):
        second.commit()
    assert out.read_bytes() == b"from a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv"], "no partial file left"
    with pytest.raises(OutputExists):
        check_sink(str(out), exclusive=True)


def test_http_is_read_only(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write to https:// URLs"):
        open_sink("https://example.com/out.mp4")
