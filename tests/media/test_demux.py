"""The decoder against ffprobe: same frames at the same times, audio packets untouched, bad files refused."""

from __future__ import annotations

import av
import numpy as np
import pytest

from streamup.errors import InputError
from streamup.media.demux import Decoder, VideoFrame
from tests.conftest import media
from tests.media import probe


def _read(name: str) -> tuple[Decoder, list[VideoFrame], list[av.Packet]]:
    """Decode a whole clip. The container stays open: packets refer to its streams (closed at exit)."""
    path = media(name)
    decoder = Decoder(path.open("rb"), str(path))
    items = list(decoder)
    frames = [i for i in items if isinstance(i, VideoFrame)]
    return decoder, frames, [i for i in items if not isinstance(i, VideoFrame)]


def test_vfr_frames_keep_their_times_and_audio_packets_pass_untouched() -> None:
    decoder, frames, packets = _read("vfr_h264_aac.mp4")
    path = media("vfr_h264_aac.mp4")
    times = [float(f.pts * f.time_base) for f in frames]
    assert times == pytest.approx(probe.frame_times(path), abs=1e-6)
    assert len(set(np.round(np.diff(times), 4))) == 3  # the three frame rates of the clip
    audio = probe.packets(path, "a:0")
    assert [p.pts for p in packets] == [int(a["pts"]) for a in audio]
    assert [p.size for p in packets] == [int(a["size"]) for a in audio]
    assert frames[0].image.dtype == np.uint8 and frames[0].image.shape == (360, 640, 3)
    assert decoder.info.frames_estimate == 78


def test_ten_bit_decodes_to_sixteen_bit_rgb() -> None:
    decoder, frames, _ = _read("hevc_main10_bt709.mp4")
    assert decoder.info.bit_depth == 10
    image = frames[10].image
    assert image.dtype == np.uint16
    # 10-bit content spread over 16 bits: values are not confined to the low 10 bits
    assert image.max() > 1023


def test_two_audio_streams_and_subtitles_are_listed_for_passthrough() -> None:
    decoder, frames, packets = _read("two_audio_subs.mkv")
    assert [s.type for s in decoder.passthrough] == ["audio", "audio", "subtitle"]
    assert len(frames) == 96
    per_stream = {s.index: sum(p.stream.index == s.index for p in packets) for s in decoder.passthrough}
    path = media("two_audio_subs.mkv")
    assert per_stream == {1: len(probe.packets(path, "a:0")), 2: len(probe.packets(path, "a:1")),
                          3: len(probe.packets(path, "s:0"))}


def test_rotation_and_sample_aspect_ratio_are_read() -> None:
    rotated = _read("rotated90_h264_aac.mp4")[0].info
    assert rotated.display_matrix is not None
    odd = _read("odd_321x241_vp9_opus.webm")[0].info
    assert (odd.width, odd.height) == (321, 241)
    sar = probe.video(media("odd_321x241_vp9_opus.webm"))["sample_aspect_ratio"]
    assert str(odd.sample_aspect_ratio) == sar.replace(":", "/") == "4/3"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("bad_empty.mp4", "empty file"),
        ("bad_text.mp4", "not a readable video"),
        ("bad_truncated_40pct_moov_at_end.mp4", "not a readable video"),
        ("audio_only_aac.m4a", "no video stream"),
        ("still_640x360.png", "still image"),
    ],
)
def test_unusable_inputs_are_refused_at_open(name: str, words: str) -> None:
    with media(name).open("rb") as f, pytest.raises(InputError, match=words) as err:
        Decoder(f, name)
    assert "\n" not in str(err.value)


def test_truncated_video_fails_while_decoding() -> None:
    path = media("bad_truncated_40pct_faststart.mp4")
    with path.open("rb") as f:
        decoder = Decoder(f, path.name)  # the header is intact
        with pytest.raises(InputError, match="stops decoding"):
            list(decoder)
        decoder.close()
