"""The two ends every pipeline-level path opens (``streamup.pipeline.ends``), on a real 1 s clip: a clean
block publishes a whole output with every frame and the audio, a raising one leaves nothing, byte counts
are the file sizes, and a container that is no video is blamed on the side the caller names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from streamup.errors import InputError, OutputError
from streamup.media.demux import VideoFrame
from streamup.media.mux import EncodeSettings
from streamup.pipeline.ends import decoding, demuxing, encoding


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1 s of 160x90 test pattern at 24 fps with a sine tone (AAC)."""
    out = tmp_path_factory.mktemp("ends") / "clip.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=160x90:rate=24:duration=1",
                    "-f", "lavfi", "-i", "sine=duration=1", "-c:v", "libx264", "-preset", "veryfast",
                    "-c:a", "aac", "-shortest", str(out)], check=True)
    return out


def _copy_through(clip: Path, out: Path, fail_after: int | None = None) -> tuple[int, int, int]:
    """Decode ``clip`` and encode every frame and packet into ``out`` at scale 1; raise after
    ``fail_after`` frames. Returns (frames written, bytes read, bytes written)."""
    frames = 0
    with decoding(str(clip)) as (decoder, reader), \
            encoding(str(out), decoder, settings=EncodeSettings(codec="ffv1"), metadata={"job": "t"}) as \
            (encoder, writer):
        for item in decoder:
            if isinstance(item, VideoFrame):
                if frames == fail_after:
                    raise RuntimeError("the engine failed")
                encoder.write_frame(item.image, item.pts)
                frames += 1
            else:
                encoder.write_packet(item)
    return frames, reader.bytes, writer.bytes


def test_a_clean_block_publishes_every_frame_and_the_audio(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    frames, read, written = _copy_through(clip, out)
    assert frames == 24
    assert read >= clip.stat().st_size > 0
    assert written == out.stat().st_size > 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert sum(1 for p in container.demux(container.streams.video[0]) if p.size) == 24


def test_a_raising_block_leaves_nothing(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the engine failed"):
        _copy_through(clip, tmp_path / "out.mkv", fail_after=12)
    assert list(tmp_path.iterdir()) == [], "no output, no partial file"


def test_a_container_that_is_no_video_is_blamed_on_the_named_side(tmp_path: Path) -> None:
    junk = tmp_path / "seg-00000.mkv"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError, match="not a readable video"), demuxing(str(junk)):
        pass
    with pytest.raises(OutputError, match="not a readable video"), demuxing(str(junk), blame=OutputError):
        pass
    with pytest.raises(InputError, match="not a readable video"), decoding(str(junk)):
        pass
