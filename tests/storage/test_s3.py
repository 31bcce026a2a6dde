"""S3 in and out against a real HTTP endpoint (moto server): what is read, what is written, what is left."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import av
import pytest

from streamup.errors import InputError, OutputError
from streamup.storage import open_sink, open_source
from streamup.storage.s3 import S3Sink
from tests.conftest import media
from tests.storage.conftest import S3


def demux(file: object) -> list[tuple[int, int | None, int | None, str]]:
    """Every packet of every stream: index, pts, dts and a hash of its payload."""
    with av.open(file) as container:
        return [(p.stream.index, p.pts, p.dts, hashlib.sha1(bytes(p)).hexdigest())
                for p in container.demux() if p.size]


def test_random_seeks_return_the_objects_bytes(s3: S3) -> None:
    path = media("hevc_pcm_640x360.mov")
    data = path.read_bytes()
    with open_source(s3.put("in.mov", path)) as source:
        assert source.size == len(data)
        assert source.file.seekable()
        rng = random.Random(7)
        for _ in range(300):
            pos = rng.randrange(len(data))
            n = rng.choice([1, 100, 4096, 70000])
            source.file.seek(pos)
            assert source.file.read(n) == data[pos : pos + n]
    assert all(g.range and g.range.startswith("bytes=") and "-" in g.range and not g.range.endswith("-")
               for g in s3.counter.gets), "every GET must name a bounded range"


@pytest.mark.parametrize("name", ["faststart.mp4", "moov_at_end.mp4", "hevc_pcm_640x360.mov",
                                  "orig_chaplin_640x360_h264_mp3.mp4", "two_audio_subs.mkv"])
def test_demuxing_fetches_little_more_than_the_object(s3: S3, name: str) -> None:
    """The whole file demuxed by FFmpeg through the reader: same packets as the local file, and the server
    sends at most 1.5x the object (moov-at-end included)."""
    path = media(name)
    uri = s3.put(name, path)
    s3.counter.reset()
    with open_source(uri) as source:
        packets = demux(source.file)
    assert packets == demux(str(path))
    ratio = s3.counter.served(name) / path.stat().st_size
    assert 0.99 < ratio <= 1.5, f"{name}: served {ratio:.3f}x the object"


def test_an_input_replaced_mid_read_fails_instead_of_splicing(s3: S3) -> None:
    uri = s3.put("in.mp4", media("faststart.mp4"))
    with open_source(uri) as source:
        head = source.file.read(1000)
        s3.put("in.mp4", media("moov_at_end.mp4"))
        assert head + source.file.read(1000) == media("faststart.mp4").read_bytes()[:2000], "from the cache"
        source.file.seek(200_000)
        with pytest.raises(InputError, match="the object was replaced while it was being read"):
            source.file.read(1000)


def test_missing_input_fails_fast_with_one_line(s3: S3) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match=r"^input not found: s3://.*/nope\.mp4$"):
        open_source(s3.uri("nope.mp4"))
    with pytest.raises(InputError, match="input not found"):
        open_source("s3://no-such-bucket-here/in.mp4")
    with pytest.raises(InputError, match="want s3://bucket/key"):
        open_source(f"s3://{s3.bucket}/")
    assert time.monotonic() - start < 5


def test_missing_output_bucket_fails_fast_with_one_line(s3: S3) -> None:
    start = time.monotonic()
    with pytest.raises(OutputError, match=r"^output bucket does not exist: s3://no-such-bucket-here$"):
        open_sink("s3://no-such-bucket-here/out.mp4")
    with pytest.raises(OutputError, match="cannot write to https:// URLs"):
        open_sink("https://example.com/out.mp4")
    assert time.monotonic() - start < 5


def test_unreachable_endpoint_fails_in_seconds(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: connection refused
    start = time.monotonic()
    with pytest.raises(InputError, match="cannot reach the endpoint"):
        open_source(s3.uri("in.mp4"))
    with pytest.raises(OutputError, match="cannot reach the endpoint"):
        open_sink(s3.uri("out.mp4"))
    assert time.monotonic() - start < 60


def test_multipart_upload_commits_one_object_with_type_and_metadata(s3: S3) -> None:
    data = random.Random(1).randbytes(12 * 1024 * 1024 + 123)
    sink = S3Sink(s3.uri("out.mp4"), content_type=None, part_size=5 * 1024 * 1024,
                  metadata={"source": "https://host/in.mp4?X-Amz-Signature=secret", "model": "lanczos",
                            "scale": "2", "streamup-version": "0.1.0", "title": "Café"})
    assert not sink.seekable and not sink.file.seekable()
    with sink:
        view = memoryview(data)
        for i in range(0, len(data), 65536):
            sink.file.write(view[i : i + 65536])
        assert s3.keys() == [], "nothing is visible before commit"
        sink.file.close()  # what FFmpeg does when the container closes: must not complete the upload
        assert s3.keys() == []
    head = s3.client.head_object(Bucket=s3.bucket, Key="out.mp4")
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"source": "https://host/in.mp4", "model": "lanczos", "scale": "2",
                                "streamup-version": "0.1.0", "title": "Caf\\xe9"}
    assert head["ETag"].strip('"').endswith("-3"), "three parts"
    assert s3.get("out.mp4") == data
    assert s3.uploads() == []


def test_an_exception_aborts_the_upload(s3: S3) -> None:
    with pytest.raises(RuntimeError, match="muxer failed"), open_sink(s3.uri("out.mkv")) as sink:
        sink.file.write(b"\x1a\x45\xdf\xa3" * 1000)
        assert len(s3.uploads()) == 1
        raise RuntimeError("muxer failed")
    assert s3.keys() == []
    assert s3.uploads() == []


def test_a_store_failing_mid_upload_leaves_nothing(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    sink = S3Sink(s3.uri("out.webm"), content_type=None, metadata=None, part_size=5 * 1024 * 1024)
    s3.counter.fail_uploads = True
    failed = r"upload of s3://.*/out\.webm failed at part 1: InternalError"
    with pytest.raises(OutputError, match=failed), sink:
        sink.file.write(bytes(6 * 1024 * 1024))
    s3.counter.fail_uploads = False
    assert s3.keys() == []
    assert s3.uploads() == []


def test_local_paths_still_work(tmp_path: Path) -> None:
    path = media("faststart.mp4")
    with open_source(str(path)) as source:
        assert source.file.read(8) == path.read_bytes()[:8]
    out = f"{tmp_path}/out.mp4"
    with open_sink(out) as sink:
        assert sink.seekable
        sink.file.write(b"data")
    assert Path(out).read_bytes() == b"data"
