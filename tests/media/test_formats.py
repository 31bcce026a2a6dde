"""Studio sources keep chroma, depth, RGB and alpha: each clip through ``upscale`` (lanczos), judged by
``../shared/tools/fidelity.py`` in its own process and by pixel values against ffmpeg's own lanczos."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from streamup.engine.lanczos import LanczosUpscaler
from streamup.errors import UsageError
from streamup.media import formats
from streamup.media.formats import Layout, SourceFormat
from streamup.options import UpscaleOptions
from streamup.pipeline import upscale
from tests.media import probe
from tests.media.conftest import Upscaled

FAST = UpscaleOptions(scale=2, model="lanczos", preset="superfast")


@pytest.mark.parametrize(
    ("name", "ext", "codec", "pix_fmt"),
    [
        ("prores422hq.mov", ".mov", "prores", "yuv422p10le"),  # ProRes → ProRes HQ, 4:2:2 10-bit
        ("prores4444_alpha.mov", ".mov", "prores", "yuva444p12le"),  # 4444 + alpha (decodes as 12-bit)
        ("h264_444.mp4", ".mp4", "h264", "yuv444p"),  # High 4:4:4 Predictive
        ("hevc_422_12bit.mkv", ".mkv", "hevc", "yuv422p12le"),  # Main 4:2:2 12
        ("ffv1_rgb.mkv", ".mkv", "h264", "gbrp"),  # RGB stays RGB: x264rgb (decoded as planar GBR)
        ("qtrle_alpha.mov", ".mov", "qtrle", "argb"),  # RGB + alpha
        ("qtrle_alpha.mov", ".mkv", "ffv1", "bgra"),  # RGB + alpha into FFV1
        ("mpeg4.avi", ".mp4", "h264", "yuv420p"),  # AVI in
    ],
)
def test_each_format_is_kept_and_passes_fidelity(
    clip: Callable[[str], Path], upscaled: Upscaled, name: str, ext: str, codec: str, pix_fmt: str
) -> None:
    src = clip(name)
    out, result = upscaled(name, ext)
    checks = probe.fidelity_checks(src, out, 2)
    assert probe.failed(checks) == {}
    v, source = probe.video(out), probe.video(src)
    assert (v["codec_name"], v["pix_fmt"]) == (codec, pix_fmt)
    assert result.frames == len(probe.frame_times(src))
    if source["pix_fmt"].startswith(("yuva", "argb")):
        assert checks["alpha"]["ok"]
    if codec == "prores":
        assert v["profile"] == source["profile"]  # HQ stays HQ, 4444 stays 4444


def _raw(path: Path, graph: str, pix_fmt: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """All frames of ``path`` through an ffmpeg filter graph, as an array (ffmpeg does the decoding)."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", graph, "-pix_fmt", pix_fmt,
            "-f", "rawvideo", "-"]
    data = subprocess.run(argv, capture_output=True, check=True).stdout
    return np.frombuffer(data, dtype).reshape(-1, *shape)


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


@pytest.mark.parametrize(("name", "ext"), [("prores4444_alpha.mov", ".mov"), ("qtrle_alpha.mov", ".mkv")])
def test_alpha_is_upscaled_like_a_lanczos_reference(
    clip: Callable[[str], Path], upscaled: Upscaled, name: str, ext: str
) -> None:
    """The output's alpha plane against ffmpeg's lanczos of the source's alpha plane (16-bit), and the ramp
    survives: transparent at one edge, opaque at the other, monotonic in between. (``format=gray16le``
    first: Debian ffmpeg's scale otherwise treats the extracted 12-bit alpha as limited range.)"""
    src = clip(name)
    out, _ = upscaled(name, ext)
    shape = (360, 640)
    ref = _raw(src, "alphaextract,format=gray16le,scale=640:360:flags=lanczos", "gray16le", shape, np.uint16)
    got = _raw(out, "alphaextract", "gray16le", shape, np.uint16)
    assert got.shape == ref.shape
    assert _psnr(got, ref, 65535) > 50.0
    ramp = got[0].astype(float).mean(axis=1 if name.startswith("qtrle") else 0)  # qtrle's runs down
    assert ramp[0] < 0.02 * 65535 and ramp[-1] > 0.98 * 65535
    assert np.all(np.diff(ramp) >= -0.002 * 65535)


def _rgb_frames(path: Path, scale: str = "") -> np.ndarray:
    graph = f"{scale + ',' if scale else ''}format=rgb24"
    return _raw(path, graph, "rgb24", (360, 640, 3), np.uint8)


@pytest.mark.parametrize("options", [{"codec": "ffv1"}, {}])
def test_rgb_source_has_no_colour_shift(clip: Callable[[str], Path], upscaled: Upscaled,
                                        options: dict) -> None:
    """FFV1 RGB → RGB output (lossless FFV1, or the default x264rgb at crf 18) against ffmpeg's lanczos."""
    src = clip("ffv1_rgb.mkv")
    out, _ = upscaled("ffv1_rgb.mkv", ".mkv", **options)
    assert probe.video(out)["pix_fmt"] == ("bgr0" if options else "gbrp")
    ref = _rgb_frames(src, "scale=640:360:flags=lanczos")
    got = _rgb_frames(out)
    channel_shift = np.abs(got.astype(float).mean((0, 1, 2)) - ref.astype(float).mean((0, 1, 2)))
    assert channel_shift.max() < 0.5  # per channel, in 8-bit levels
    assert _psnr(got, ref, 255) > (45.0 if options else 38.0)


def test_rgb_source_into_yuv_gets_a_real_matrix(clip: Callable[[str], Path], upscaled: Upscaled) -> None:
    """Forced into YUV 4:4:4, an RGB source is converted with BT.601 (SD) and tagged so, never "gbr"."""
    src = clip("ffv1_rgb.mkv")
    out, _ = upscaled("ffv1_rgb.mkv", ".mp4", codec="libx264")
    v = probe.video(out)
    assert (v["pix_fmt"], v["color_space"], v["color_range"]) == ("yuv444p", "bt470bg", "tv")
    checks = probe.fidelity_checks(src, out, 2)
    assert checks["matrix_valid"]["ok"] and checks["chroma"]["ok"]
    ref, got = _rgb_frames(src, "scale=640:360:flags=lanczos"), _rgb_frames(out)
    assert np.abs(got.astype(float).mean((0, 1, 2)) - ref.astype(float).mean((0, 1, 2))).max() < 1.0


def test_pix_fmt_override_and_drop_alpha(clip: Callable[[str], Path], upscaled: Upscaled,
                                         tmp_path: Path) -> None:
    out = tmp_path / "flat.mp4"
    with pytest.raises(UsageError, match="alpha"):
        upscale(str(clip("prores4444_alpha.mov")), str(out), FAST, upscaler=LanczosUpscaler(2))
    assert list(tmp_path.iterdir()) == []
    out, _ = upscaled("prores4444_alpha.mov", ".mp4", drop_alpha=True, pix_fmt="yuv420p10le")
    v = probe.video(out)
    assert (v["codec_name"], v["pix_fmt"]) == ("hevc", "yuv420p10le")


def test_webm_alpha_is_vp9_with_an_alpha_plane(upscaled: Upscaled) -> None:
    """VP9 keeps alpha as a second 4:2:0 stream (only libvpx decodes it; ffprobe's vp9 reports yuv420p)."""
    out, _ = upscaled("qtrle_alpha.mov", ".webm")
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-c:v", "libvpx-vp9", "-i", str(out), "-frames:v", "1",
            "-vf", "alphaextract", "-f", "rawvideo", "-pix_fmt", "gray", "-"]
    alpha = np.frombuffer(subprocess.run(argv, capture_output=True, check=True).stdout, np.uint8)
    rows = alpha.reshape(360, 640).astype(float).mean(axis=1)
    assert rows[0] < 10 and rows[-1] > 245  # the top-to-bottom ramp


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("hevc_422_12bit.mkv", {"codec": "libx264"}, "cannot keep the source's 4:2:2 12-bit"),
        ("prores422hq.mov", {"codec": "prores_ks", "pix_fmt": "yuv420p"}, "cannot encode --pix-fmt yuv420p"),
        ("prores422hq.mov", {"pix_fmt": "nonsense"}, "unknown --pix-fmt"),
        ("h264_420.mp4", {"codec": "aac"}, "not a video encoder"),
        ("qtrle_alpha.mov", {"codec": "libx264"}, "cannot carry the source's alpha"),
    ],
)
def test_impossible_combinations_are_usage_errors_before_any_work(
    clip: Callable[[str], Path], tmp_path: Path, name: str, options: dict, words: str
) -> None:
    out = tmp_path / ("o" + Path(name).suffix)
    with pytest.raises(UsageError, match=words):
        upscale(str(clip(name)), str(out), UpscaleOptions(scale=2, **options), upscaler=LanczosUpscaler(2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("source", "container", "codec", "pix_fmt"),
    [
        (SourceFormat("h264", "High", "yuv420p"), "mp4", "libx264", "yuv420p"),
        (SourceFormat("hevc", "Main 10", "yuv420p10le"), "mp4", "libx265", "yuv420p10le"),
        (SourceFormat("h264", "High 4:2:2", "yuv422p"), "matroska", "libx264", "yuv422p"),
        (SourceFormat("prores", "HQ", "yuv422p10le"), "mp4", "libx265", "yuv422p10le"),  # no ProRes in mp4
        (SourceFormat("prores", "4444", "yuva444p12le"), "mov", "prores_ks", "yuva444p10le"),
        (SourceFormat("ffv1", None, "gbrp16le"), "matroska", "ffv1", "gbrp16le"),  # past x265's 12 bits
        (SourceFormat("ffv1", None, "bgr0"), "mov", "libx264rgb", "bgr0"),
        (SourceFormat("png", None, "rgba64be"), "mov", "png", "rgba64be"),  # 16-bit RGBA: only png has it
        (SourceFormat("qtrle", None, "argb"), "mov", "qtrle", "argb"),
        (SourceFormat("vp9", "Profile 0", "yuv420p"), "webm", "libvpx-vp9", "yuv420p"),
        (SourceFormat("dvvideo", None, "yuv411p"), "matroska", "ffv1", "yuv411p"),  # DV NTSC 4:1:1
    ],
)
def test_default_encoder_and_pixel_format(source: SourceFormat, container: str, codec: str,
                                          pix_fmt: str) -> None:
    with av.open(io.BytesIO(), "w", format=container) as out:
        supported = out.supported_codecs
    plan = formats.choose(container, supported, source, codec=None, pix_fmt=None, drop_alpha=False)
    assert (plan.codec, plan.pix_fmt) == (codec, pix_fmt)


def test_layouts_of_pixel_formats() -> None:
    assert formats.layout("yuv422p10le") == Layout("4:2:2", 10, False)
    assert formats.layout("yuva444p12le") == Layout("4:4:4", 12, True)
    assert formats.layout("bgr0") == Layout("RGB", 8, False)
    assert formats.layout("yuv411p") == Layout("4:1:1", 8, False)
    assert formats.layout("yuv420p") == Layout("4:2:0", 8, False)
    assert formats.rgb_format(formats.layout("yuva444p12le")) == "rgba64le"
    assert formats.rgb_format(formats.layout("yuv420p")) == "rgb24"
