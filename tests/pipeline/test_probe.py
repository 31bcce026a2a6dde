"""The header probe on real clips: frame size, duration and byte size as ffprobe measured them
(../shared/media/README.md), and a one-line ``InputError`` for what is no video."""

from __future__ import annotations

import pytest

from streamup.errors import InputError
from streamup.pipeline.probe import Probe, probe
from tests.conftest import MEDIA


@pytest.mark.parametrize(("name", "width", "height", "duration"), [
    ("faststart.mp4", 640, 360, 3.0),
    ("moov_at_end.mp4", 640, 360, 3.0),  # the index after the data: the probe seeks for it
    ("odd_321x241_vp9_opus.webm", 321, 241, 3.007),
    ("sr_input_x4_160x90.mkv", 160, 90, 2.0),
    ("hevc_pcm_640x360.mov", 640, 360, 3.0),
    ("rotated90_h264_aac.mp4", 640, 360, 3.0),  # stored size: the pixels the engine will see
])
def test_the_header_gives_size_and_duration(name: str, width: int, height: int, duration: float) -> None:
    path = MEDIA / name
    assert probe(str(path)) == Probe(width, height, duration, path.stat().st_size)


def test_a_still_image_has_no_duration() -> None:
    assert probe(str(MEDIA / "still_640x360.png")).duration is None


@pytest.mark.parametrize(("name", "words"), [
    ("audio_only_aac.m4a", "no video stream in "),
    ("bad_text.mp4", "not a readable video: "),
    ("bad_empty.mp4", "not a readable video: "),
])
def test_what_is_no_video_is_one_input_error(name: str, words: str) -> None:
    with pytest.raises(InputError, match=f"^{words}") as refused:
        probe(str(MEDIA / name))
    assert "\n" not in str(refused.value)
