"""Tile geometry: which input windows to run and which part of each output to keep.

The grid is exactly the official ``RealESRGANer.tile_process`` grid (core tiles of ``tile`` px from the top
left; each window is its core grown by ``pad`` px on every side, clipped to the frame), so streamup's tiled
output matches the reference tiled output, and a window never reaches outside the frame: at the frame's
edge the network sees the same zero padding as on the whole frame. Only the core of each window's output is
kept, so the pad's border artifacts are cropped away and tiles never show seams.

Windows of equal shape can be stacked into one forward call; ``group_by_shape`` collects them (interior
windows of a frame, and the same windows across frames, share a shape).

Default tile size comes from a memory budget per forward call, not a fixed number: the measured peak
activation memory per input pixel differs 8x between the compact and the RRDB networks (see docs/engine.md).
On a GPU the largest window that fits is best; on the CPU a cache-sized window (``CPU_TILE_CAP``) is faster
than a whole frame, and small frames are batched up to the same budget.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_PAD = 10  # RealESRGANer's default; the seam test shows >= 45 dB against whole-frame output with it
MIN_TILE = 64
# Peak resident bytes per input pixel of one fp32 forward, channels_last, measured on the CPU with
# ru_maxrss at 128x128 input (docs/engine.md): Compact 1.2 KB, RRDB (ESRGAN) 9.5 KB. Unknown architectures
# (transformers and the like) get a conservative 16 KB.
BYTES_PER_PIXEL = {"Compact": 1.2e3, "ESRGAN": 9.5e3}
UNKNOWN_BYTES_PER_PIXEL = 16e3
CPU_BUDGET = 1 << 30  # 1 GiB per forward call (all windows of a batch together)
# On the CPU cache-sized windows beat whole frames. fp32 on an AVX2 EPYC: windows of 192-320 px ran 10-15%
# faster than whole 640x360 frames (1 thread, compact model: 4.0-4.6 vs 5.4 CPU-s). bf16 on an AVX512-BF16
# EPYC (Zen 4), 6 interleaved rounds in one process, compact model, median CPU-s per 640x360 frame at x4:
# tile 384 1.75, 256 1.96, whole frame 2.04 (benchmarks.measure pair; docs/engine.md): bf16 activations
# are half the bytes, so a window twice the area fits the same cache.
CPU_TILE_CAP = 256
CPU_TILE_CAP_BF16 = 384
# Measured (1 thread): four 160x90 frames per call were no faster than one by one (bigger working set).
CPU_BATCH = 1
# Lanes: concurrent upscale calls, each on cores // lanes torch threads. One call on 2 threads pays OpenMP's
# barrier after every layer, and a thread that is preempted (by a codec thread, a second job, a neighbour)
# stalls its partner; two 1-thread lanes never wait on each other. AMD EPYC Zen 4, 2 cores, bf16, end to
# end (benchmarks/lanes.py): level on a quiet machine (1 lane / 2 lanes 0.94-1.01x, median of 3 rounds per
# model), 1.27x faster for 2 lanes beside one busy process (animevideov3 x2, 2 rounds). Two lanes, not one
# per core: each lane holds a batch's activations (up to CPU_BUDGET).
CPU_LANES = 2
GPU_SHARE = 0.2  # of the device's memory for one forward (all windows of a batch together)
GPU_BATCH = 4


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
    """Tiles covering a ``height x width`` frame; one whole-frame tile if ``tile`` is 0 or the frame fits."""
    if tile <= 0 or (height <= tile and width <= tile):
        return [Tile(0, height, 0, width, 0, height, 0, width)]
    tiles = []
    for ty in range(math.ceil(height / tile)):
        for tx in range(math.ceil(width / tile)):
            y0, x0 = ty * tile, tx * tile
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            tiles.append(
                Tile(
                    y0,
                    y1,
                    x0,
                    x1,
                    max(y0 - pad, 0),
                    min(y1 + pad, height),
                    max(x0 - pad, 0),
                    min(x1 + pad, width),
                )
            )
    return tiles


def group_by_shape(items: Iterable[tuple[int, Tile]]) -> list[list[tuple[int, Tile]]]:
    """(frame index, tile) pairs grouped by window shape, so each group can be batched."""
    groups: dict[tuple[int, int], list[tuple[int, Tile]]] = defaultdict(list)
    for frame_index, tile in items:
        groups[tile.window_shape].append((frame_index, tile))
    return list(groups.values())


def budget_pixels(arch_id: str, budget_bytes: float, half: bool) -> int:
    """How many input pixels of windows one forward call may hold within ``budget_bytes``."""
    per_pixel = BYTES_PER_PIXEL.get(arch_id, UNKNOWN_BYTES_PER_PIXEL) * (0.5 if half else 1.0)
    return int(budget_bytes / per_pixel)


def default_tile(arch_id: str, budget_bytes: float, half: bool) -> int:
    """The largest tile (multiple of 32, at least 64) whose window fits ``budget_bytes`` of activations."""
    side = math.sqrt(budget_pixels(arch_id, budget_bytes, half)) - 2 * DEFAULT_PAD
    return max(MIN_TILE, int(side) // 32 * 32)


def chunks(group: list[tuple[int, Tile]], batch: int, max_pixels: int | None) -> list[list[tuple[int, Tile]]]:
    """Split one same-shape group into even forward calls of at most ``batch`` windows and ``max_pixels``."""
    h, w = group[0][1].window_shape
    per_call = batch if max_pixels is None else max(1, min(batch, max_pixels // (h * w)))
    calls = math.ceil(len(group) / per_call)
    size = math.ceil(len(group) / calls)
    return [group[i : i + size] for i in range(0, len(group), size)]
