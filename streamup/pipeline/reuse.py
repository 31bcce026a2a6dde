"""Reuse of unchanged pictures: a tile whose input window did not change keeps the output it already has.

Animation holds each drawing for two or three frames, backgrounds stand still, slides and screen recordings
barely move, yet the network would recompute every pixel of every frame. The engine cuts frames on a fixed
grid and a tile's output depends only on its window, the core grown by the pad
(``engine.base.TiledUpscaler``), so where a window is unchanged its output is the one already computed.

Two steps, each where the pipeline already runs in decode order:

- ``choose`` (where a lane takes its batch, under the run's take lock): each tile's window is compared with
  the window of the tile's *anchor*, the frame whose output the tile holds. Unchanged (``unchanged``):
  reuse; else the tile is computed and this frame becomes its anchor. Comparing with the anchor, not the
  previous frame, keeps slow drift (a fade, a slow pan) from adding up unseen: it is caught once it exceeds
  the threshold against the frame actually shown. A tile can only reuse a frame decided before it, so lanes
  computing later batches at the same time never wait for each other.
- ``fill`` (where batches are passed on, in turn): the reused tiles are copied from the last output passed
  on, which holds each tile's anchor output (the anchor came earlier in decode order); a frame reused
  everywhere never reached the network and is that output itself.

What it holds is bounded whatever the video's length: a copy of each tile's anchor window (about one input
frame) and a reference to the last output frame (``held_bytes``). State is per run, so each fan-out segment
starts fresh: its first frame is computed whole, as a whole run's first frame is.

The comparison, in 8-bit levels (16-bit frames divided by 257): a window is unchanged if its RMS difference
is at most ``RMS_LEVELS`` and no ``BLOCK`` x ``BLOCK`` block's mean absolute difference exceeds
``BLOCK_LEVELS``. The RMS bounds how far a reused output strays from a recomputed one; the blocks catch a
small change in a large still window, which the RMS dilutes. Measurements: docs/engine.md "Reuse".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from streamup.engine.tiling import Tile

BLOCK = 16
# Output RMS difference measured 1.2-1.9x the input's (consecutive frames of the twos and chaplin clips,
# 320x180, realesr-animevideov3 x2): input 0.6 keeps a reused output >= 45 dB from a recomputed one with ~2 dB
# to spare (input 0.58 gave 48.6 dB, 0.81 gave 44.5). x264 crf 20 repeats of a drawing: 0.08-0.9, most < 0.6.
RMS_LEVELS = 0.6
# Compression noise on repeats reached 5 levels in the worst block, a new drawing 18 and more; 8 trips on a
# change of k pixels by d levels when k * d > 2048 (a 4x4 px cursor at full contrast, a 16 px text stroke).
BLOCK_LEVELS = 8.0


@dataclass(frozen=True)
class Choice:
    """What to do with one frame: the tiles to compute (none: the frame skips the network) and to reuse."""

    compute: Sequence[Tile]
    reused: Sequence[Tile]


def unchanged(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether window ``a`` may keep the output computed for window ``b`` (``RMS_LEVELS``, ``BLOCK_LEVELS``).
    The RMS goes first: on ordinary footage it settles nearly every window alone."""
    diff = _signed(a, b)
    return _rms(diff) <= RMS_LEVELS and _worst_block(diff) <= BLOCK_LEVELS


def _signed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` in 8-bit levels: int16 for 8-bit frames (half the memory traffic of int32), float32 scaled
    by 1/257 for 16-bit ones."""
    if a.dtype == np.uint16:
        return (a.astype(np.float32) - b) * np.float32(1 / 257)
    return a.astype(np.int16) - b


def _rms(diff: np.ndarray) -> float:
    flat = diff.reshape(-1).astype(np.float32)
    return float(np.sqrt(np.dot(flat, flat) / flat.size))


def _worst_block(diff: np.ndarray) -> float:
    """Rows of pixels are summed as rows of samples (``c`` per pixel): no pass over the channel axis, which
    took 8 of 9 ms for a 640x360 frame."""
    h, w, c = diff.shape
    d = np.abs(diff).reshape(h, w * c)
    ys, xs = np.arange(0, h, BLOCK), np.arange(0, w, BLOCK)
    wide = np.float32 if d.dtype == np.float32 else np.int32
    sums = np.add.reduceat(np.add.reduceat(d, xs * c, axis=1, dtype=wide), ys, axis=0)
    areas = np.outer(np.diff(ys, append=h), np.diff(xs, append=w)) * c
    return float((sums / areas).max())


class Reuse:
    """One run's reuse state: anchors per tile, the last output, and what was reused.

    ``grid(height, width)`` is the engine's current tiling (``TiledUpscaler.grid``); ``scale`` the output's
    enlargement. ``choose`` runs in decode order (one caller at a time) and ``fill`` in the same order.
    """

    def __init__(self, grid: Callable[[int, int], list[Tile]], scale: int) -> None:
        self._grid = grid
        self.scale = scale
        self._tiles: list[Tile] = []
        self._anchors: list[np.ndarray | None] = []
        self._key: tuple[tuple[int, ...], np.dtype] | None = None
        self._held: np.ndarray | None = None
        self.frames_reused = 0
        self.tiles_reused = 0
        self.tiles_computed = 0
        self.held_bytes = 0  # peak bytes held: anchor windows and the last output frame

    def counts(self) -> dict[str, int]:
        """Frames and tiles reused, tiles computed so far (fields of ``Progress`` and ``UpscaleResult``)."""
        return {"frames_reused": self.frames_reused, "tiles_reused": self.tiles_reused,
                "tiles_computed": self.tiles_computed}

    def choose(self, image: np.ndarray) -> Choice:
        """Which tiles of this frame (the next in decode order) to compute; the others are reused."""
        tiles = self._grid(image.shape[0], image.shape[1])
        key = (image.shape, image.dtype)
        if tiles != self._tiles or key != self._key:  # first frame, a new size, or the engine's tile shrank
            self._tiles, self._key, self._anchors = tiles, key, [None] * len(tiles)
        compute, reused = [], []
        for k, t in enumerate(tiles):
            window = image[t.wy0 : t.wy1, t.wx0 : t.wx1]
            anchor = self._anchors[k]
            if anchor is not None and unchanged(window, anchor):
                reused.append(t)
            else:
                compute.append(t)
                self._anchors[k] = window.copy()
        return Choice(compute, reused)

    def fill(self, output: np.ndarray | None, choice: Choice) -> np.ndarray:
        """The whole output of a frame whose computed tiles are in ``output`` (None when none were): the
        reused tiles come from the last output passed on. Call in decode order, once per chosen frame."""
        s, held = self.scale, self._held
        if output is None:  # reused everywhere: the last output is this frame's too (outputs are read only)
            assert held is not None, "a first frame is always computed"
            output = held
        elif choice.reused:
            assert held is not None
            for t in choice.reused:
                core = (slice(t.y0 * s, t.y1 * s), slice(t.x0 * s, t.x1 * s))
                output[core] = held[core]
        self._held = output
        self.frames_reused += not choice.compute
        self.tiles_reused += len(choice.reused)
        self.tiles_computed += len(choice.compute)
        anchors = sum(a.nbytes for a in self._anchors if a is not None)
        self.held_bytes = max(self.held_bytes, anchors + output.nbytes)
        return output
