"""The engine's tile door (``TiledUpscaler``): computing some tiles of a frame gives those tiles' output.

Real default model (realesr-animevideov3, a x4 network) on a 90x160 crop of the still picture, 64 px tiles:
x4 output is the network's own, so a tile computed alone is bit-identical to the same tile of the whole
frame; x2 output is the network's shrunk by lanczos, which a frame computed in part does window by window,
so there the tile matches the whole-frame shrink to within the seam difference (>= 45 dB).
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from streamup.engine.base import TiledUpscaler
from streamup.engine.upscaler import TorchUpscaler
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler
from tests.conftest import media
from tests.engine.util import psnr

TILE = 64


def _picture(dtype: type = np.uint8) -> np.ndarray:
    with av.open(str(media("still_640x360.png"))) as c:
        frame = next(c.decode(video=0)).reformat(width=160, height=90)
    rgb = frame.to_ndarray(format="rgb24")
    return rgb if dtype == np.uint8 else rgb.astype(np.uint16) * 257


def _engine(scale: int) -> TorchUpscaler:
    engine = build_upscaler(UpscaleOptions(scale=scale, tile=TILE))
    assert isinstance(engine, TorchUpscaler) and isinstance(engine, TiledUpscaler)
    return engine


def _core(image: np.ndarray, tile, scale: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return image[tile.y0 * scale : tile.y1 * scale, tile.x0 * scale : tile.x1 * scale]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiles_computed_alone_are_the_whole_frames_tiles(dtype: type) -> None:
    engine = _engine(4)
    frame = _picture(dtype)
    grid = engine.grid(90, 160)
    assert len(grid) == 6
    whole = engine.upscale([frame])[0]
    chosen = [grid[1], grid[5]]
    part = engine.upscale([frame, frame], [chosen, grid])
    for t in chosen:
        assert np.array_equal(_core(part[0], t, 4), _core(whole, t, 4))
    assert np.array_equal(part[1], whole)  # a frame asked whole in the same call is computed whole


@pytest.mark.slow
def test_at_x2_a_partial_frame_is_shrunk_window_by_window_within_the_seam_difference() -> None:
    engine = _engine(2)
    frame = _picture()
    grid = engine.grid(90, 160)
    whole = engine.upscale([frame])[0]
    part = engine.upscale([frame], [grid[:3]])[0]
    for t in grid[:3]:
        assert psnr(_core(part, t, 2), _core(whole, t, 2)) >= 45.0


@pytest.mark.slow
def test_tiles_no_longer_on_the_grid_compute_whole_frames() -> None:
    engine = _engine(4)
    frame = _picture()
    old = engine.grid(90, 160)
    engine.tile = 32  # what an out-of-memory retry does
    assert np.array_equal(engine.upscale([frame], [old[:1]])[0], engine.upscale([frame])[0])
