"""Tile geometry: which input windows to run and which part of each output to keep.

The grid is exactly the official ``RealESRGANer.tile_process`` grid (core tiles of ``tile`` px from the top
left; each window is its core grown by ``pad`` px on every side, clipped to the frame), so streamup's tiled
output matches the reference tiled output, and a window never reaches outside the frame: at the frame's
edge the network sees the same zero padding as on the whole frame. Only the core of each window's output is
kept, so the pad's border artifacts are cropped away and tiles never show seams.

Windows of equal shape can be stacked into one forward call; ``group_by_shape`` collects them (interior
windows of a frame, and the same windows across frames, share a shape).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    """A core region ``[y0:y1, x0:x1]`` and the window ``[wy0:wy1, wx0:wx1]`` run to compute it (input px)."""

    y0: int
    y1: int
    x0: int
    x1: int
    wy0: int
    wy1: int
    wx0: int
    wx1: int

    @property
    def window_shape(self) -> tuple[int, int]:
        return self.wy1 - self.wy0, self.wx1 - self.wx0


def plan(height: int, width: int, tile: int, pad: int) -> list[Tile]:
    """Tiles covering a ``height x width`` frame; one whole-frame tile when ``tile`` is 0 or the frame fits."""
    if tile <= 0 or (height <= tile and width <= tile):
        return [Tile(0, height, 0, width, 0, height, 0, width)]
    tiles = []
    for ty in range(math.ceil(height / tile)):
        for tx in range(math.ceil(width / tile)):
            y0, x0 = ty * tile, tx * tile
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            tiles.append(
                Tile(y0, y1, x0, x1, max(y0 - pad, 0), min(y1 + pad, height), max(x0 - pad, 0), min(x1 + pad, width))
            )
    return tiles


def group_by_shape(items: Iterable[tuple[int, Tile]]) -> list[list[tuple[int, Tile]]]:
    """(frame index, tile) pairs grouped by window shape, so each group can be batched."""
    groups: dict[tuple[int, int], list[tuple[int, Tile]]] = defaultdict(list)
    for frame_index, tile in items:
        groups[tile.window_shape].append((frame_index, tile))
    return list(groups.values())
