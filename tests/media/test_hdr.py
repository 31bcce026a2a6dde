"""HDR: static HDR10 metadata carried into the output's bitstream, PQ and HLG tags kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from streamup.media import hdr
from tests.media import clips, probe
from tests.media.conftest import Upscaled


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_hdr10_mastering_display_and_light_level_survive(
    clip: Callable[[str], Path], upscaled: Upscaled, ext: str
) -> None:
    src = clip("hdr10.mp4")
    out, _ = upscaled("hdr10.mp4", ext)
    checks = probe.fidelity_checks(src, out, 2)
    assert probe.failed(checks) == {}
    assert checks["hdr_mastering"]["ok"] and checks["hdr_cll"]["ok"]
    v = probe.video(out)
    tags = (v["color_transfer"], v["color_primaries"], v["color_space"])
    assert tags == ("smpte2084", "bt2020", "bt2020nc")


def test_hlg_tags_are_kept(clip: Callable[[str], Path], upscaled: Upscaled) -> None:
    src = clip("hlg.mkv")
    out, _ = upscaled("hlg.mkv", ".mp4")
    assert probe.failed(probe.fidelity_checks(src, out, 2)) == {}
    assert probe.video(out)["color_transfer"] == "arib-std-b67"


def test_encoder_parameters_are_the_source_values() -> None:
    """The x265 string that clips.py wrote into the source comes back out of the parsed side data."""
    def xy(x: int, y: int) -> tuple[Fraction, Fraction]:
        return Fraction(x, 50000), Fraction(y, 50000)

    meta = hdr.StaticHdr(primaries=(xy(34000, 16000), xy(13250, 34500), xy(7500, 3000)),
                         white_point=xy(15635, 16450),
                         luminance=(Fraction(1000), Fraction(1, 10000)), light_level=(1000, 400))
    assert meta.encoder_params("libx265") == f"master-display={clips.MASTER_DISPLAY}:max-cll={clips.MAX_CLL}"
    assert meta.encoder_params("libx264").startswith("mastering-display=G(13250,34500)")


def test_an_encoder_without_hdr_parameters_warns(upscaled: Upscaled, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="streamup"):
        upscaled("hdr10.mp4", ".mkv", codec="ffv1")
    assert any("HDR10 static metadata" in r.getMessage() and "ffv1" in r.getMessage() for r in caplog.records)
