"""YUV ↔ RGB with the source's own colour description, so upscaling never shifts colours.

Models work on RGB. Converting with the wrong matrix or range (swscale's default is BT.601 limited) tints HD
footage and crushes or lifts blacks; the mistake would survive into the output and be invisible in tests that
only count frames. So the matrix and range come from the stream (or, when untagged, from the convention
players use: SD → BT.601, HD → BT.709), and the output is tagged with exactly what the input said.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
_EXACT_8 = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_EXACT_16 = Interpolation.BILINEAR | Interpolation.ACCURATE_RND
# The engine's RGB(A) layouts by (channels, dtype); RGBA carries a source's alpha through the engine.
_RGB = {(3, np.dtype(np.uint8)): "rgb24", (3, np.dtype(np.uint16)): "rgb48le",
        (4, np.dtype(np.uint8)): "rgba", (4, np.dtype(np.uint16)): "rgba64le"}
RGB_MATRIX = 0  # AVCOL_SPC_RGB: the "identity matrix" tag of RGB (GBR) streams; never valid on YUV

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


def for_output(colour: Colour, rgb_output: bool, width: int, height: int) -> Colour:
    """The description an output pixel format can honestly carry.

    RGB output is tagged RGB (identity matrix, full range). YUV output of an RGB source needs a real matrix:
    the YUV→RGB convention players apply to untagged video of the source's size (BT.601 for SD, BT.709
    above), limited range, and that tag written out; a YUV stream tagged with the identity matrix (what an
    RGB source's tag copied verbatim gives) is shown with wrong colours by every player that honours it.
    """
    if rgb_output:
        return replace(colour, matrix=RGB_MATRIX, range=JPEG)
    if colour.matrix == RGB_MATRIX:
        sd = width <= _SD_MAX[0] and height <= _SD_MAX[1]
        return replace(colour, matrix=_BT601 if sd else _BT709, range=MPEG)
    return colour


def to_rgb(frame: av.VideoFrame, colour: Colour, fmt: str) -> np.ndarray:
    """Decoded frame → full-range RGB(A) array (``uint8`` for rgb24/rgba, ``uint16`` for rgb48le/rgba64le).

    An RGB source's samples are full range whatever its tag says (swscale would otherwise expand a
    "limited" RGB frame's levels and shift every colour)."""
    rgb_source = frame.format.is_rgb
    rgb = frame.reformat(
        format=fmt,
        src_colorspace=colour.sws_matrix,
        src_color_range=JPEG if rgb_source else colour.range,
        dst_color_range=JPEG,
        interpolation=_EXACT_8 if fmt in ("rgb24", "rgba") else _EXACT_16,
    )
    return rgb.to_ndarray()


def from_rgb(image: np.ndarray, colour: Colour, pix_fmt: str) -> av.VideoFrame:
    """Upscaled RGB(A) array → a frame of ``pix_fmt`` in the given matrix and range, tagged with them.

    ``colour`` is already the output's description (``for_output``): RGB targets are tagged RGB, YUV targets
    get a real matrix."""
    fmt = _RGB[(image.shape[2], image.dtype)]
    rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
    out = rgb.reformat(
        format=pix_fmt,
        dst_colorspace=colour.sws_matrix,
        src_color_range=JPEG,
        dst_color_range=colour.range,
        interpolation=_EXACT_8 if image.dtype == np.uint8 else _EXACT_16,
    )
    out.colorspace = colour.matrix
    out.color_range = colour.range
    out.color_primaries = colour.primaries
    out.color_trc = colour.transfer
    return out
