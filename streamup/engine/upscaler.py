"""The torch-backed FrameUpscaler: frames in, tiles batched through the network, exact-size frames out.

Frames travel to the device as integers (4x less traffic than float), through page-locked buffers with
non-blocking copies on CUDA, and are normalised there. Each window's
output is clamped and rounded straight into an integer output frame, as ``RealESRGANer`` does, so a 4K
output never exists as a float32 copy. A network scale above the requested one is brought down with the
reference's lanczos resize (``resize.downscale``). On CUDA out-of-memory the same frames are retried with half
the batch, then half the tile (down to 64 px); ``oom_retries`` counts those retries for metrics.
``batch`` caps the windows per forward call and ``max_batch_pixels`` (the default memory budget) caps their
total size, so the same default batches four small frames but runs big frames one at a time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import numpy as np
import spandrel
import torch

from streamup.engine import tiling
from streamup.engine.device import Placement
from streamup.engine.resize import downscale
from streamup.engine.tiling import MIN_TILE, Tile
from streamup.errors import StreamupError, UsageError

log = logging.getLogger(__name__)

_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class OutOfMemory(StreamupError):
    """Even one 64 px tile does not fit on the device."""


class TorchUpscaler:
    """Runs one loaded network at a fixed placement; cheap to create, the network itself is shared."""

    def __init__(
        self,
        model: spandrel.ImageModelDescriptor,
        placement: Placement,
        *,
        scale: int,
        tile: int,
        tile_pad: int,
        batch: int,
        name: str,
        max_batch_pixels: int | None = None,
        channels_last: bool = True,
        lanes: int = 1,
    ) -> None:
        self.model = model
        self.placement = placement
        self.scale = scale
        self.shrink = model.scale // scale
        self.tile = tile
        self.tile_pad = tile_pad
        self.batch = max(1, batch)
        self.batch_frames = self.batch
        self.lanes = max(1, lanes)
        self.max_batch_pixels = max_batch_pixels
        self.name = name
        self.channels_last = channels_last
        self.oom_retries = 0
        self.device = placement.device.type
        self.precision = placement.precision

    def grid(self, height: int, width: int) -> list[Tile]:
        """The tiles a ``height x width`` frame is cut into now (``base.TiledUpscaler``)."""
        return tiling.plan(height, width, self.tile, self.tile_pad)

    def upscale(
        self, frames: Sequence[np.ndarray], tiles: Sequence[Sequence[Tile]] | None = None
    ) -> list[np.ndarray]:
        """Whole frames, or at least ``tiles[i]`` of frame ``i``, the rest undefined (base.TiledUpscaler)."""
        if not frames:
            return []
        dtype = _check(frames)
        while True:
            # leave the except scope before retrying, so the failed attempt's tensors are really freed
            with contextlib.suppress(torch.OutOfMemoryError):
                return self._upscale(frames, dtype, tiles)
            self._shrink_after_oom(frames[0].shape[:2])

    def _shrink_after_oom(self, frame_hw: tuple[int, ...]) -> None:
        torch.cuda.empty_cache()
        self.oom_retries += 1
        if self.batch > 1:
            self.batch //= 2
        else:
            current = self.tile if self.tile > 0 else max(frame_hw)
            if current <= MIN_TILE:
                raise OutOfMemory(f"out of {self.placement.device} memory even for one {MIN_TILE} px tile")
            self.tile = max(MIN_TILE, current // 2)
        log.warning(
            "%s: out of %s memory; retrying with batch %d, tile %d",
            self.name,
            self.placement.device,
            self.batch,
            self.tile,
        )

    @torch.inference_mode()
    def _upscale(
        self, frames: Sequence[np.ndarray], dtype: np.dtype, only: Sequence[Sequence[Tile]] | None
    ) -> list[np.ndarray]:
        device, net_scale = self.placement.device, self.model.scale
        maxval = _MAX[dtype]
        integer = torch.uint8 if dtype == np.uint8 else torch.int32
        host = np.stack(frames)
        if dtype == np.uint16:
            host = host.astype(np.int32)  # torch has few uint16 kernels; int32 holds 16-bit values exactly
        cuda = device.type == "cuda"
        src = torch.from_numpy(host)
        if cuda:  # page-locked staging: the copy runs as DMA, asynchronously to the host thread
            src = src.pin_memory()
        src = src.to(device, non_blocking=True).permute(0, 3, 1, 2)
        n, _, h, w = src.shape
        # The output is assembled in frame layout (N x H x W x 3): the network's channels_last output copies
        # into it without a transpose, and the frames handed back are views of it, not transposed copies.
        out = torch.empty((n, h * net_scale, w * net_scale, 3), dtype=integer, device=device)
        tiles = self.grid(h, w)
        wanted = _wanted(tiles, n, only)
        # A frame computed in part cannot be shrunk whole (its missing tiles would bleed into the lanczos taps
        # at their borders): each of its windows is shrunk on its own and its core kept. The window's pad
        # (>= 10 input px) covers the taps' reach (3 output px), so only the seam differs from a whole-frame
        # shrink, by as little as tiles differ from whole frames (>= 45 dB: tests/engine/test_tiling.py).
        partial = [len(ts) < len(tiles) for ts in wanted]
        apart = self.shrink > 1 and any(partial)
        if apart:
            small = torch.empty((n, h * self.scale, w * self.scale, 3), dtype=integer, device=device)
        for group in tiling.group_by_shape((i, t) for i in range(n) for t in wanted[i]):
            for chunk in tiling.chunks(group, self.batch, self.max_batch_pixels):
                windows = torch.stack([src[i, :, t.wy0 : t.wy1, t.wx0 : t.wx1] for i, t in chunk])
                result = self._forward(windows, maxval).permute(0, 2, 3, 1)
                for (i, t), res in zip(chunk, result, strict=True):
                    if apart and partial[i]:
                        _put_core(small[i], _shrink(res[None], self.shrink)[0], t, self.scale)
                    else:
                        _put_core(out[i], res, t, net_scale)
        if apart:
            whole = [i for i in range(n) if not partial[i]]
            if whole:
                small[whole] = _shrink(out[whole], self.shrink)
            out = small
        elif self.shrink > 1:
            out = _shrink(out, self.shrink)
        out = out.contiguous()
        if cuda:
            staged = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
            staged.copy_(out, non_blocking=True)
            torch.cuda.current_stream(device).synchronize()
            out = staged
        result = out.numpy()
        if dtype == np.uint16:
            result = result.astype(np.uint16)
        return list(result)

    def _forward(self, windows: torch.Tensor, maxval: float) -> torch.Tensor:
        """Network output for integer windows, clamped and rounded back to integers like the reference."""
        x = windows.to(self.placement.weights_dtype) / maxval
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if self.placement.autocast
            else contextlib.nullcontext()
        )
        with autocast:
            y = self.model(x)
        y = y.float().clamp_(0, 1).mul_(maxval).round_()
        return y.to(windows.dtype)


def _wanted(tiles: list[Tile], frames: int, only: Sequence[Sequence[Tile]] | None) -> list[Sequence[Tile]]:
    """The tiles to compute per frame: all of them unless ``only`` names some, and all of them again when
    ``only`` names a tile that is not on the grid any more (an OOM retry halved the tile since)."""
    if only is None:
        return [tiles] * frames
    if len(only) != frames:
        raise UsageError(f"tiles for {len(only)} frames given with {frames} frames")
    on_grid = set(tiles)
    return [tiles if any(t not in on_grid for t in ts) else ts for ts in only]


def _shrink(out: torch.Tensor, factor: int) -> torch.Tensor:
    """Frames (N x H x W x 3) shrunk by ``factor``: planar for the resize, whose strided row/column passes
    run ~2x faster on it."""
    return downscale(out.permute(0, 3, 1, 2).contiguous(), factor).permute(0, 2, 3, 1)


def _put_core(out: torch.Tensor, window: torch.Tensor, t: Tile, scale: int) -> None:
    """Copy the core of one window's output (H x W x 3, ``scale`` times the input) into its frame."""
    oy, ox = (t.y0 - t.wy0) * scale, (t.x0 - t.wx0) * scale
    core = window[oy : oy + (t.y1 - t.y0) * scale, ox : ox + (t.x1 - t.x0) * scale]
    out[t.y0 * scale : t.y1 * scale, t.x0 * scale : t.x1 * scale] = core


def _check(frames: Sequence[np.ndarray]) -> np.dtype:
    first = frames[0]
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype not in _MAX:
        raise UsageError(f"frames must be H x W x 3 uint8 or uint16, got {first.shape} {first.dtype}")
    for f in frames:
        if f.shape != first.shape or f.dtype != first.dtype:
            raise UsageError("all frames of one upscale call must share size and dtype")
    return first.dtype
