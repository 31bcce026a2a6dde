"""``streamup.upscale`` with S3 (and presigned https) at either end: fidelity, bytes read, nothing left over.

Outputs are downloaded with boto3 and checked by the independent ffprobe checker
(../shared/tools/fidelity.py): frame count, frame times, audio payload bytes and times, colour, rotation.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from streamup.engine.base import FrameUpscaler
from streamup.engine.lanczos import LanczosUpscaler
from streamup.errors import InputError, OutputError
from streamup.options import UpscaleOptions
from streamup.pipeline import Progress, upscale
from streamup.storage.s3 import PART_SIZE
from streamup.version import __version__
from tests.conftest import REPO, SHARED, media
from tests.storage.conftest import S3, Presigner
from tests.storage.s3_endpoint import CuttableProxy, S3Server, s3_env

FIDELITY = SHARED / "tools" / "fidelity.py"
LANCZOS = UpscaleOptions(scale=2, model="lanczos")
QUICK = UpscaleOptions(scale=2, model="lanczos", preset="ultrafast")  # where only the input side matters


def assert_faithful(source: Path, output: Path) -> None:
    argv = [sys.executable, str(FIDELITY), "compare", str(source), str(output), "--scale", "2"]
    check = subprocess.run(argv, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def top_level_boxes(data: bytes) -> list[str]:
    """The ISO-BMFF boxes at the top of an mp4/mov: how it was laid out."""
    names, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        names.append(kind.decode("latin-1"))
        pos += size
    return names


@pytest.mark.parametrize(("name", "out_ext"), [
    ("moov_at_end.mp4", ".mp4"),            # moov at end in, fragmented mp4 out; B-frames, AAC priming
    ("vfr_h264_aac.mp4", ".mp4"),           # variable frame rate survives fragmenting
    ("hevc_pcm_640x360.mov", ".mov"),       # QuickTime, PCM audio, moov at end
    ("two_audio_subs.mkv", ".mkv"),         # two audio streams and subtitles, Matroska streamed
    ("odd_321x241_vp9_opus.webm", ".webm"),  # odd size, VP9 + Opus, WebM streamed
])
def test_s3_to_s3_round_trip_is_faithful(s3: S3, tmp_path: Path, name: str, out_ext: str) -> None:
    source = media(name)
    uri = s3.put(name, source)
    s3.counter.reset()
    result = upscale(uri, s3.uri("out" + out_ext), LANCZOS)
    assert result.frames > 0
    ratio = s3.counter.served(name) / source.stat().st_size
    assert ratio <= 1.5, f"read {ratio:.2f}x the input"
    assert s3.uploads() == []
    head = s3.client.head_object(Bucket=s3.bucket, Key="out" + out_ext)
    assert head["Metadata"] == {"source": uri, "model": "lanczos", "scale": "2",
                                "streamup-version": __version__}
    assert head["ContentType"].startswith("video/")
    out = tmp_path / ("out" + out_ext)
    out.write_bytes(s3.get("out" + out_ext))
    assert_faithful(source, out)
    if out_ext in (".mp4", ".mov"):  # fragmented, index up front, a fragment at least every 2 s
        boxes = top_level_boxes(out.read_bytes())
        assert boxes[:3] == ["ftyp", "moov", "moof"] and boxes[-1] == "mfra", boxes
        assert boxes.count("moof") >= 2, "fragments are cut every 2 s, not only at keyframes"


@pytest.mark.parametrize("name", ["faststart.mp4", "moov_at_end.mp4"])
def test_upscale_reads_each_input_byte_about_once(s3: S3, tmp_path: Path, name: str) -> None:
    source = media(name)
    uri = s3.put(name, source)
    s3.counter.reset()
    upscale(uri, str(tmp_path / "out.mkv"), QUICK)
    ratio = s3.counter.served(name) / source.stat().st_size
    assert 0.99 < ratio <= 1.5, f"{name}: {ratio:.3f}x"


def test_presigned_https_input_to_s3(s3: S3, presign: Presigner, tmp_path: Path) -> None:
    source = media("moov_at_end.mp4")
    s3.put("in.mp4", source)
    url = presign("in.mp4")
    upscale(url, s3.uri("out.mp4"), QUICK)
    assert presign.counter.served("in.mp4") <= 1.5 * source.stat().st_size
    head = s3.client.head_object(Bucket=s3.bucket, Key="out.mp4")
    assert head["Metadata"]["source"] == url.split("?")[0], "no signature copied into metadata"
    out = tmp_path / "out.mp4"
    out.write_bytes(s3.get("out.mp4"))
    assert_faithful(source, out)


def test_bad_ends_fail_before_any_work(s3: S3, tmp_path: Path) -> None:
    """Both ends are checked before the engine is built (importing torch, loading or downloading weights):
    with weights that cannot load, a bad end must still be the error reported."""
    unloadable = UpscaleOptions(scale=2, model=str(tmp_path / "no-such-model.pth"))
    with pytest.raises(InputError, match="input not found"):
        upscale(s3.uri("missing.mp4"), s3.uri("out.mp4"), unloadable)
    uri = s3.put("in.mp4", media("faststart.mp4"))
    with pytest.raises(OutputError, match=r"^output bucket does not exist: s3://no-such-bucket-here$"):
        upscale(uri, "s3://no-such-bucket-here/out.mp4", unloadable)
    with pytest.raises(OutputError, match="output directory does not exist"):
        upscale(uri, str(tmp_path / "missing" / "out.mp4"), unloadable)
    with pytest.raises(OutputError, match="cannot write to https:// URLs"):
        upscale(uri, "https://example.com/out.mp4", unloadable)
    assert list(tmp_path.iterdir()) == []
    assert s3.keys() == ["in.mp4"]
    assert s3.uploads() == [], "the write check leaves no upload behind"


class _FailsAfter:
    """A real upscaler that breaks after ``n`` frames, as a model can (out of memory, a bad weight)."""

    def __init__(self, inner: FrameUpscaler, n: int) -> None:
        self.inner, self.left = inner, n
        self.scale, self.batch_frames, self.name = inner.scale, inner.batch_frames, inner.name
        self.lanes = inner.lanes
        self.device, self.precision, self.oom_retries = inner.device, inner.precision, inner.oom_retries

    def upscale(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.left -= len(frames)
        if self.left < 0:
            raise RuntimeError("engine failed mid-run")
        return self.inner.upscale(frames)


def test_failure_after_parts_were_uploaded_leaves_nothing(s3: S3) -> None:
    """90 lossless 720p frames (~0.2 MiB each) fill two 8 MiB parts before the engine fails on the 91st of
    120: the upload must be aborted. The server counts the parts it accepted (after the abort the upload is
    gone, so its parts can no longer be listed)."""
    failing = _FailsAfter(LanczosUpscaler(2), 90)
    uri = s3.put("in.mp4", media("main_h264_aac_640x360.mp4"))
    with pytest.raises(RuntimeError, match="engine failed mid-run"):
        upscale(uri, s3.uri("out.mkv"), UpscaleOptions(scale=2, codec="ffv1"), upscaler=failing)
    parts = s3.counter.uploaded_parts("out.mkv")
    assert parts, "the failure must come after parts went up"
    assert all(p.bytes == PART_SIZE for p in parts), parts
    assert s3.keys() == ["in.mp4"]
    assert s3.uploads() == []


def test_a_network_lost_mid_run_is_one_line_and_the_lifecycle_rule_is_needed(
        s3: S3, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection to S3 dies after 24 frames: the run fails with one ``OutputError`` in seconds. The abort
    cannot reach S3 either, so the upload stays: that is what deploy/s3-lifecycle.json is for."""
    proxy = CuttableProxy(int(s3_server.endpoint.rsplit(":", 1)[1]))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")

    def cut_after_24_frames(progress: Progress) -> None:
        if progress.frames_done >= 24:
            proxy.cut()

    start = time.monotonic()
    with pytest.raises(OutputError, match=r"^(upload|cannot complete upload) of s3://.*/out\.mp4 .*") as info:
        upscale(str(media("moov_at_end.mp4")), s3.uri("out.mp4"), QUICK, progress=cut_after_24_frames)
    assert "\n" not in str(info.value)
    assert time.monotonic() - start < 60
    assert s3.keys() == []
    (left,) = s3.uploads()
    s3.client.abort_multipart_upload(Bucket=s3.bucket, Key=left["Key"], UploadId=left["UploadId"])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamup", "upscale", "--model", "lanczos", "--no-progress", *args]


def test_a_run_creates_no_file_anywhere(s3: S3, tmp_path: Path) -> None:
    """S3 -> S3 by the CLI in a child process under strace: no file is opened for writing (nor a directory
    made, nor anything renamed) anywhere, and TMPDIR stays empty."""
    uri = s3.put("in.mp4", media("moov_at_end.mp4"))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    trace = tmp_path / "trace"
    env = {**os.environ, **s3_env(s3.endpoint), "TMPDIR": str(tmpdir), "PYTHONDONTWRITEBYTECODE": "1"}
    strace = ["strace", "-f", "-qq", "--seccomp-bpf", "-o", str(trace),
              "-e", "trace=open,openat,creat,mkdir,rename"]
    run = subprocess.run([*strace, *_cli("--preset", "ultrafast", uri, s3.uri("out.mp4"))],
                         env=env, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert s3.keys() == ["in.mp4", "out.mp4"]
    assert list(tmpdir.iterdir()) == []
    lines = trace.read_text().splitlines()
    assert sum("libav" in line for line in lines) > 0, "the trace must see the run's opens"
    writes = [line for line in lines
              if re.search(r"O_WRONLY|O_RDWR|O_CREAT|creat\(|mkdir\(|rename\(", line)
              and not re.search(r'"/dev/|= -1 E', line)]
    assert writes == []


def test_sigterm_mid_upload_aborts_it(s3: S3) -> None:
    """What a container runtime does on stop: the CLI exits 143 and leaves no object and no upload."""
    uri = s3.put("in.mp4", media("main_h264_aac_640x360.mp4"))
    env = {**os.environ, **s3_env(s3.endpoint)}
    child = subprocess.Popen(_cli("--codec", "ffv1", uri, s3.uri("out.mkv")), env=env, cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not s3.uploads():  # the sink is open: encoding has started
            assert child.poll() is None and time.monotonic() < deadline, "the run ended before uploading"
            time.sleep(0.05)
        time.sleep(0.5)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("streamup: error:"), stderr
    assert s3.keys() == ["in.mp4"]
    assert s3.uploads() == []
