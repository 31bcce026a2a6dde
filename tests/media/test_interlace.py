"""Interlaced archive sources (MPEG-2 in MPEG-PS, H.264 MBAFF in MPEG-TS): deinterlaced, progressive out."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from streamup.engine.lanczos import LanczosUpscaler
from streamup.errors import UsageError
from streamup.options import UpscaleOptions
from streamup.pipeline import upscale
from tests.media import probe
from tests.media.conftest import Upscaled


@pytest.mark.parametrize(("name", "ext"), [("interlaced_dvd.mpg", ".mp4"), ("interlaced_h264.ts", ".mkv")])
def test_auto_deinterlaces_at_frame_rate(clip: Callable[[str], Path], upscaled: Upscaled, name: str,
                                         ext: str) -> None:
    """No combing left (idet on the output shrunk back), same frames and times, flagged progressive; the
    DVD clip's anamorphic 16:9 aspect (SAR 16:11) is kept."""
    src = clip(name)
    assert probe.video(src)["field_order"] == "tt"
    out, result = upscaled(name, ext)  # auto is the default
    checks = probe.fidelity_checks(src, out, 2)
    assert probe.failed(checks) == {}
    assert checks["not_combed"]["ok"] and result.frames == 12
    assert probe.video(out)["field_order"] == "progressive"
    if name.endswith(".mpg"):
        assert checks["sar"]["ok"] and probe.video(out)["sample_aspect_ratio"] == "16:11"


def test_field_mode_gives_a_frame_per_field_at_every_source_time(clip: Callable[[str], Path],
                                                                 upscaled: Upscaled) -> None:
    src = clip("interlaced_h264.ts")
    out, result = upscaled("interlaced_h264.ts", ".mp4", deinterlace="field")
    checks = probe.fidelity_checks(src, out, 2)
    assert probe.failed(checks) == {}
    times_in, times_out = probe.frame_times(src), probe.frame_times(out)
    assert result.frames == len(times_out) == 2 * len(times_in) == 24
    assert times_out[::2] == pytest.approx(times_in, abs=1e-3)  # each source time, then the next field's
    assert [b - a for a, b in itertools.pairwise(times_out)] == pytest.approx([0.02] * 23, abs=1e-3)


def test_off_keeps_the_fields_woven_which_the_checker_sees(clip: Callable[[str], Path],
                                                           upscaled: Upscaled) -> None:
    """``off`` is for mis-flagged progressive content; on truly interlaced content the combing stays, and
    fidelity.py catches it: proof that the auto test above can fail."""
    src = clip("interlaced_dvd.mpg")
    out, _ = upscaled("interlaced_dvd.mpg", ".mp4", deinterlace="off")
    checks = probe.fidelity_checks(src, out, 2)
    assert probe.failed(checks).keys() == {"not_combed"}


def test_unknown_mode_is_a_usage_error(clip: Callable[[str], Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="deinterlace must be one of auto, field, off, got 'bob'"):
        upscale(str(clip("interlaced_h264.ts")), str(tmp_path / "o.mp4"), UpscaleOptions(deinterlace="bob"),
                upscaler=LanczosUpscaler(2))
    assert list(tmp_path.iterdir()) == []
