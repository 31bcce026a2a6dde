"""The encoder/muxer: container from the extension, fragmented mp4 for sinks that cannot seek."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from streamup.engine.lanczos import LanczosUpscaler
from streamup.errors import UsageError
from streamup.media.demux import Decoder, VideoFrame
from streamup.media.mux import Encoder, EncodeSettings, buffer_options, container_for, merge_options
from tests.conftest import media
from tests.media import probe


class _ForwardOnly(io.RawIOBase):
    """A write-only stream that cannot seek, like an S3 multipart upload."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def _top_level_atoms(data: bytes) -> list[str]:
    atoms, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        atoms.append(data[pos + 4:pos + 8].decode("latin-1"))
        if size < 8:
            break
        pos += size
    return atoms


def _transcode(src: Path, out, extension: str, *, seekable: bool) -> None:
    decoder = Decoder(src.open("rb"), src.name)
    up = LanczosUpscaler(2)
    enc = Encoder(out, extension, seekable=seekable, video=decoder.info, scale=2,
                  passthrough=decoder.passthrough, settings=EncodeSettings(preset="veryfast"))
    for item in decoder:
        if isinstance(item, VideoFrame):
            enc.write_frame(up.upscale([item.image])[0], item.pts)
        else:
            enc.write_packet(item)
    enc.close()
    decoder.close()


def test_non_seekable_sink_gets_fragmented_mp4_that_keeps_everything(tmp_path: Path) -> None:
    src = media("faststart.mp4")
    sink = _ForwardOnly()
    _transcode(src, sink, ".mp4", seekable=False)
    atoms = _top_level_atoms(bytes(sink.data))
    assert atoms[:2] == ["ftyp", "moov"] and "moof" in atoms  # index first, then fragments: no seek back
    out = tmp_path / "frag.mp4"
    out.write_bytes(sink.data)
    checks = probe.fidelity().compare(str(src), str(out), 2)
    assert all(ok for ok, _ in checks.values()), checks


def test_seekable_mp4_is_a_plain_mp4(tmp_path: Path) -> None:
    out = tmp_path / "plain.mp4"
    with out.open("wb") as f:
        _transcode(media("sr_input_x4_160x90.mkv"), f, ".mp4", seekable=True)
    atoms = _top_level_atoms(out.read_bytes())
    assert "moof" not in atoms and "moov" in atoms


@pytest.mark.parametrize(("ext", "muxer"), [(".mp4", "mp4"), (".mov", "mov"), (".mkv", "matroska"),
                                           (".webm", "webm")])
def test_container_from_extension(ext: str, muxer: str) -> None:
    assert container_for(ext) == muxer


@pytest.mark.parametrize("ext", [".avi", "", ".MP4x"])
def test_unknown_extension_is_a_usage_error(ext: str) -> None:
    with pytest.raises(UsageError, match="unsupported output extension"):
        container_for(ext)


def test_x264_lookahead_is_capped_by_bytes_only_for_huge_frames() -> None:
    """1080p x4 = 8K: preset medium's 40 lookahead frames would hold ~4 GB, at 4K ~1 GB; 1080p keeps 40."""
    assert buffer_options("libx264", EncodeSettings(), 7680, 4320) == {
        "rc-lookahead": "5", "x264-params": "sync-lookahead=0"}
    assert buffer_options("libx264", EncodeSettings(), 3840, 2160) == {
        "rc-lookahead": "20", "x264-params": "sync-lookahead=0"}
    assert buffer_options("libx264", EncodeSettings(), 1920, 1080) == {}
    assert buffer_options("libx264", EncodeSettings(preset="veryfast"), 3840, 2160) == {}  # its 10 fits
    assert buffer_options("libx265", EncodeSettings(), 7680, 4320) == {}


def test_encoder_parameter_strings_are_appended_to_not_replaced() -> None:
    options = {"x264-params": "stitchable=1", "crf": "18"}
    merge_options(options, {"x264-params": "sync-lookahead=0", "rc-lookahead": "10"})
    assert options == {"x264-params": "stitchable=1:sync-lookahead=0", "crf": "18", "rc-lookahead": "10"}
