"""HDR10 static metadata: read from the source's frame side data, written into the output's encoder.

An HDR10 display tone-maps with the mastering display's colour volume and the content light levels (MaxCLL,
MaxFALL); without them it guesses (usually 1000 nits), so highlights clip or dim. Upscaling changes neither
value, so both are copied exactly. The decoder exports them as frame side data whether they came from the
bitstream (HEVC SEI) or the container (mp4 ``mdcv``/``clli``, Matroska colour elements), so one reader covers
both. They are written into the bitstream through the encoder's own parameters (x265 ``master-display`` /
``max-cll``, x264 ``mastering-display`` / ``cll``), which every HDR10 player reads.

Dynamic metadata (HDR10+, Dolby Vision RPU, HDR Vivid) describes each scene of the *source* picture and would
need re-authoring for a new encode; it is dropped with a warning naming it.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from fractions import Fraction

import av

from streamup.media import side_data

log = logging.getLogger("streamup")

_DYNAMIC = {
    "DYNAMIC_HDR_PLUS": "HDR10+ dynamic metadata (SMPTE ST 2094-40)",
    "DOVI_RPU_BUFFER": "Dolby Vision RPU",
    "DOVI_METADATA": "Dolby Vision RPU",
    "DYNAMIC_HDR_VIVID": "HDR Vivid dynamic metadata (CUVA 005.1)",
}
# Units of the HEVC/AVC SEI messages (and so of x265/x264's parameters): chromaticity in 0.00002,
# luminance in 0.0001 cd/m².
_CHROMA_UNIT = 50000
_LUMA_UNIT = 10000


@dataclass(frozen=True)
class StaticHdr:
    """Mastering display (primaries R, G, B and white point as (x, y), luminance max/min in cd/m²) and
    content light level (MaxCLL, MaxFALL in cd/m²); either may be absent."""

    primaries: tuple[tuple[Fraction, Fraction], ...] | None = None
    white_point: tuple[Fraction, Fraction] | None = None
    luminance: tuple[Fraction, Fraction] | None = None  # (max, min)
    light_level: tuple[int, int] | None = None  # (MaxCLL, MaxFALL)

    def encoder_params(self, codec: str) -> str:
        """``key=value:...`` for x265-params / x264-params; empty when the codec has no such parameters."""
        parts = []
        if self.primaries and self.white_point and self.luminance:
            def xy(p: tuple[Fraction, Fraction]) -> str:
                return f"({round(p[0] * _CHROMA_UNIT)},{round(p[1] * _CHROMA_UNIT)})"

            r, g, b = self.primaries
            lum = f"L({round(self.luminance[0] * _LUMA_UNIT)},{round(self.luminance[1] * _LUMA_UNIT)})"
            display = f"G{xy(g)}B{xy(b)}R{xy(r)}WP{xy(self.white_point)}{lum}"
            parts.append(f"{'master-display' if codec == 'libx265' else 'mastering-display'}={display}")
        if self.light_level:
            parts.append(f"{'max-cll' if codec == 'libx265' else 'cll'}={self.light_level[0]},"
                         f"{self.light_level[1]}")
        return ":".join(parts)


# Encoders with HDR10 parameters, and the private option that takes them.
PARAMS_OPTION = {"libx265": "x265-params", "libx264": "x264-params"}


def read(frame: av.VideoFrame, name: str) -> StaticHdr | None:
    """The static HDR10 metadata on a decoded frame (None without any); warns about dynamic metadata."""
    mastering = side_data(frame, "MASTERING_DISPLAY_METADATA")
    light = side_data(frame, "CONTENT_LIGHT_LEVEL")
    for kind in _DYNAMIC:
        if side_data(frame, kind) is not None:
            log.warning("dropping the %s of %s: it describes the source picture scene by scene and cannot "
                        "be carried into a new encode (static HDR10 metadata is kept)", _DYNAMIC[kind], name)
    if mastering is None and light is None:
        return None
    return StaticHdr(*_mastering(mastering), light_level=_light_level(light))


def _mastering(
    data: bytes | None,
) -> tuple[tuple[tuple[Fraction, Fraction], ...] | None, tuple[Fraction, Fraction] | None,
           tuple[Fraction, Fraction] | None]:
    """``AVMasteringDisplayMetadata``: 3x2 primaries, 2 white point, min and max luminance (AVRational
    num/den int32 pairs), then has_primaries and has_luminance (int32)."""
    if data is None:
        return None, None, None
    v = struct.unpack("<22i", data[:88])
    q = [Fraction(v[i], v[i + 1]) if v[i + 1] else Fraction(0) for i in range(0, 20, 2)]
    has_primaries, has_luminance = v[20], v[21]
    primaries = ((q[0], q[1]), (q[2], q[3]), (q[4], q[5])) if has_primaries else None
    white = (q[6], q[7]) if has_primaries else None
    luminance = (q[9], q[8]) if has_luminance else None
    return primaries, white, luminance


def _light_level(data: bytes | None) -> tuple[int, int] | None:
    """``AVContentLightMetadata``: MaxCLL and MaxFALL (unsigned int each)."""
    if data is None:
        return None
    max_cll, max_fall = struct.unpack("<2I", data[:8])
    return max_cll, max_fall
