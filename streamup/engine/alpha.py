"""Alpha for RGB networks: the colour goes through the upscaler, the alpha plane through a lanczos resize.

Every Real-ESRGAN network takes and returns three channels. A source with transparency (ProRes 4444, PNG or
QuickTime RLE in .mov, FFV1) decodes to RGBA; this wrapper splits each frame, hands the RGB part to the
wrapped upscaler unchanged, and resizes the alpha plane with swscale's lanczos to exactly the same size.
Why not the network for alpha as well: a matte is not a photograph (the networks are trained to invent
photographic texture, which on a matte becomes noise in the transparency), and it would add a second full
model pass per frame, the stage that dominates run time. Lanczos keeps a matte's ramps exact and its edges
sharp, on the same pixel grid as the network's output. Details and measurements: docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import av
import numpy as np

from streamup.engine.base import FrameUpscaler, TiledUpscaler

if TYPE_CHECKING:
    from streamup.engine.tiling import Tile

_GRAY = {np.dtype(np.uint8): "gray", np.dtype(np.uint16): "gray16le"}


class AlphaUpscaler:
    """A ``FrameUpscaler`` that also takes ``H x W x 4`` RGBA frames; RGB frames pass straight through."""

    def __init__(self, inner: FrameUpscaler) -> None:
        self.inner = inner
        self.scale, self.batch_frames, self.name = inner.scale, inner.batch_frames, inner.name
        self.lanes = inner.lanes
        self.device, self.precision = inner.device, inner.precision
        self._tiled = inner if isinstance(inner, TiledUpscaler) else None
        if self._tiled is not None:  # the tile door (``base.TiledUpscaler``) stays open through the wrapper
            self.grid = self._tiled.grid

    @property
    def oom_retries(self) -> int:
        """The wrapped upscaler's count, which grows during a run."""
        return self.inner.oom_retries

    def upscale(self, frames: Sequence[np.ndarray], tiles: Sequence[Sequence[Tile]] | None = None
                ) -> list[np.ndarray]:
        """``tiles`` (only where the inner upscaler is a ``TiledUpscaler``) is handed on for the colour; the
        alpha plane is resized whole (swscale, a tiny cost beside the network)."""
        if not frames or frames[0].shape[2] == 3:
            return self._colour(frames, tiles)
        colour = self._colour([np.ascontiguousarray(f[..., :3]) for f in frames], tiles)
        return [np.dstack((rgb, upscale_plane(f[..., 3], self.scale)))
                for rgb, f in zip(colour, frames, strict=True)]

    def _colour(self, frames: Sequence[np.ndarray], tiles: Sequence[Sequence[Tile]] | None
                ) -> list[np.ndarray]:
        if tiles is None or self._tiled is None:
            return self.inner.upscale(frames)
        return self._tiled.upscale(frames, tiles)


def upscale_plane(plane: np.ndarray, scale: int) -> np.ndarray:
    """One 8- or 16-bit plane enlarged ``scale`` times with swscale's lanczos (same dtype)."""
    fmt = _GRAY[plane.dtype]
    h, w = plane.shape
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(plane), format=fmt)
    return frame.reformat(width=w * scale, height=h * scale, format=fmt, interpolation="LANCZOS").to_ndarray()
