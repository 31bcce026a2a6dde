"""RGB conversion uses the source's matrix and range; the output carries the same description."""

from __future__ import annotations

import av
import numpy as np
import pytest

from streamup.media import colour
from tests.conftest import media


def _frame(width: int, height: int, matrix: int, rng: int) -> av.VideoFrame:
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 60, 30  # a saturated orange shows matrix errors clearly
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=colour._SWS_MATRIX.get(matrix, 5), dst_color_range=rng
    )
    frame.colorspace, frame.color_range = matrix, rng
    return frame


@pytest.mark.parametrize(
    ("size", "tag", "expected"),
    [((640, 360), 2, 5), ((1280, 720), 2, 1), ((640, 360), 1, 1), ((1920, 1080), 5, 5)],
)
def test_untagged_sd_is_bt601_and_hd_bt709(size: tuple[int, int], tag: int, expected: int) -> None:
    assert colour.describe(_frame(*size, tag, colour.MPEG)).matrix == expected


@pytest.mark.parametrize(("matrix", "rng"), [(1, colour.MPEG), (5, colour.MPEG), (1, colour.JPEG)])
def test_round_trip_keeps_colours_with_the_right_matrix(matrix: int, rng: int) -> None:
    frame = _frame(64, 64, matrix, rng)
    desc = colour.describe(frame)
    rgb = colour.to_rgb(frame, desc, "rgb24")
    assert np.abs(rgb.astype(int) - [200, 60, 30]).max() <= 2
    back = colour.from_rgb(rgb, desc, "yuv420p")
    assert (int(back.colorspace), int(back.color_range)) == (matrix, rng)
    again = colour.to_rgb(back, desc, "rgb24")
    assert np.abs(again.astype(int) - rgb.astype(int)).max() <= 2
    # the wrong matrix would be visibly off: proves the test can tell them apart
    wrong = colour.to_rgb(frame, colour.Colour(6 - matrix if matrix == 1 else 1, rng, 2, 2), "rgb24")
    assert np.abs(wrong.astype(int) - [200, 60, 30]).max() > 8


def test_deep_video_round_trips_through_16_bit_rgb() -> None:
    rgb = np.zeros((32, 32, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 50000, 12000, 30000
    desc = colour.Colour(matrix=1, range=colour.MPEG, primaries=1, transfer=1)
    yuv = colour.from_rgb(rgb, desc, "yuv420p10le")
    assert yuv.format.name == "yuv420p10le" and int(yuv.color_primaries) == 1
    back = colour.to_rgb(yuv, desc, "rgb48le")
    assert back.dtype == np.uint16
    assert np.abs(back.astype(int) - rgb.astype(int)).max() < 400  # 10-bit steps are 64 in 16-bit units


@pytest.mark.parametrize(
    ("name", "rgb", "yuv", "gray", "tolerance"),
    [("main_h264_aac_640x360.mp4", "rgb24", "yuv420p", "gray", 0.1),
     ("hevc_main10_bt709.mp4", "rgb48le", "yuv420p10le", "gray10le", 0.4)],
)
def test_real_frame_round_trip_neither_darkens_nor_shifts(
    name: str, rgb: str, yuv: str, gray: str, tolerance: float
) -> None:
    """decode → RGB → YUV gives back the decoded picture: no brightness drift (swscale's fast 8-bit path
    loses ~1.1 code values of luma per round trip; its full-chroma 10-bit path a quarter of the range)."""
    with av.open(str(media(name))) as c:
        frame = next(c.decode(video=0))
    desc = colour.describe(frame)
    back = colour.from_rgb(colour.to_rgb(frame, desc, rgb), desc, yuv)
    y0 = frame.to_ndarray(format=gray).astype(int)
    y1 = back.to_ndarray(format=gray).astype(int)
    assert abs((y1 - y0).mean()) < tolerance
    assert np.abs(y1 - y0).mean() < 2 * tolerance
