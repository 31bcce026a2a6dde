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
from streamup.engine.tiling import MIN_TILE
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

    def upscale(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        if not frames:
            return []
        dtype = _check(frames)
        while True:
            # leave the except scope before retrying, so the failed attempt's tensors are really freed
            with contextlib.suppress(torch.OutOfMemoryError):
                return self._upscale(frames, dtype)
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
    def _upscale(self, frames: Sequence[np.ndarray], dtype: np.dtype) -> list[np.ndarray]:
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
        tiles = tiling.plan(h, w, self.tile, self.tile_pad)
        for group in tiling.group_by_shape((i, t) for i in range(n) for t in tiles):
            for chunk in tiling.chunks(group, self.batch, self.max_batch_pixels):
                windows = torch.stack([src[i, :, t.wy0 : t.wy1, t.wx0 : t.wx1] for i, t in chunk])
                result = self._forward(windows, maxval).permute(0, 2, 3, 1)
                for (i, t), res in zip(chunk, result, strict=True):
                    oy, ox = (t.y0 - t.wy0) * net_scale, (t.x0 - t.wx0) * net_scale
                    core = res[oy : oy + (t.y1 - t.y0) * net_scale, ox : ox + (t.x1 - t.x0) * net_scale]
                    out[i, t.y0 * net_scale : t.y1 * net_scale, t.x0 * net_scale : t.x1 * net_scale] = core
        if self.shrink > 1:  # planar for the resize: its strided row/column passes run ~2x faster on it
            out = downscale(out.permute(0, 3, 1, 2).contiguous(), self.shrink).permute(0, 2, 3, 1)
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


def _check(frames: Sequence[np.ndarray]) -> np.dtype:
    first = frames[0]
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype not in _MAX:
        raise UsageError(f"frames must be H x W x 3 uint8 or uint16, got {first.shape} {first.dtype}")
    for f in frames:
        if f.shape != first.shape or f.dtype != first.dtype:
            raise UsageError("all frames of one upscale call must share size and dtype")
    return first.dtype
