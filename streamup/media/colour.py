"""YUV ↔ RGB with the source's own colour description, so upscaling never shifts colours.

Models work on RGB. Converting with the wrong matrix or range (swscale's default is BT.601 limited) tints HD
footage and crushes or lifts blacks; the mistake would survive into the output and be invisible in tests that
only count frames. So the matrix and range come from the stream (or, when untagged, from the convention
players use: SD → BT.601, HD → BT.709), and the output is tagged with exactly what the input said.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import Interpolation

# AVColorSpace values (libavutil/pixfmt.h) that mean "not said".
_UNSPECIFIED = (2, 3)  # UNSPECIFIED, RESERVED
_BT709 = 1
_BT601 = 5  # BT470BG: what untagged SD content is, by convention
# AVColorSpace → swscale coefficient set (SWS_CS_*): several matrices share one set of coefficients.
_SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
# AVColorRange
MPEG, JPEG = 1, 2

# swscale's default 8-bit fast path rounds down in each direction: a decode→RGB→encode round trip darkens
# the picture by ~1.1 code values. Accurate rounding with full chroma interpolation makes it exact to ~0.03
# code values (about 1 ms more per 640x360 frame). The 16-bit path is accurate without FULL_CHR_H_INT, and
# with it FFmpeg 8.1 converts yuv420p10le → rgb48le wrongly (a quarter darker), so it is 8-bit only.
_EXACT = {
    "rgb24": Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT,
    "rgb48le": Interpolation.BILINEAR | Interpolation.ACCURATE_RND,
}

# Largest frame that is still "SD" for the untagged-matrix convention (PAL 720x576 and anything below).
_SD_MAX = (1024, 576)


@dataclass(frozen=True)
class Colour:
    """How the source's YUV samples map to colours, and how the output is tagged.

    ``matrix`` and ``range`` are used for both conversions and are always written to the output, resolved:
    an untagged 640x360 source is BT.601 by convention, but its 1280x720 upscale would be read as BT.709 by
    players, so the output must say BT.601 explicitly. ``primaries`` and ``transfer`` are copied verbatim
    (unspecified stays unspecified: the output claims nothing the input did not).
    """

    matrix: int
    range: int
    primaries: int
    transfer: int

    @property
    def sws_matrix(self) -> int:
        return _SWS_MATRIX.get(self.matrix, _BT601)


def describe(frame: av.VideoFrame) -> Colour:
    """The colour description of a decoded frame, with untagged matrix/range resolved by convention."""
    tag_matrix = int(frame.colorspace)
    tag_range = int(frame.color_range)
    if tag_matrix in _UNSPECIFIED:
        sd = frame.width <= _SD_MAX[0] and frame.height <= _SD_MAX[1]
        matrix = _BT601 if sd else _BT709
    else:
        matrix = tag_matrix
    return Colour(
        matrix=matrix,
        range=JPEG if tag_range == JPEG else MPEG,
        primaries=int(frame.color_primaries),
        transfer=int(frame.color_trc),
    )


def rgb_format(bit_depth: int) -> str:
    """RGB layout the engine sees: 8 bits per channel for 8-bit video, full 16 bits for anything deeper."""
    return "rgb24" if bit_depth <= 8 else "rgb48le"


def to_rgb(frame: av.VideoFrame, colour: Colour, fmt: str) -> np.ndarray:
    """Decoded YUV frame → full-range RGB array (``uint8`` for rgb24, ``uint16`` for rgb48le)."""
    rgb = frame.reformat(
        format=fmt,
        src_colorspace=colour.sws_matrix,
        src_color_range=colour.range,
        dst_color_range=JPEG,
        interpolation=_EXACT[fmt],
    )
    return rgb.to_ndarray()


def from_rgb(image: np.ndarray, colour: Colour, pix_fmt: str) -> av.VideoFrame:
    """Upscaled RGB array → YUV frame in the source's matrix and range, tagged like the source."""
    fmt = "rgb24" if image.dtype == np.uint8 else "rgb48le"
    rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
    out = rgb.reformat(
        format=pix_fmt,
        dst_colorspace=colour.sws_matrix,
        src_color_range=JPEG,
        dst_color_range=colour.range,
        interpolation=_EXACT[fmt],
    )
    out.colorspace = colour.matrix
    out.color_range = colour.range
    out.color_primaries = colour.primaries
    out.color_trc = colour.transfer
    return out
