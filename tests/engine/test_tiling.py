"""Tiles: exact coverage, no seams, batching that does not change a pixel, OOM retries that keep going."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from streamup.engine import tiling
from streamup.engine.upscaler import TorchUpscaler
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler
from tests.conftest import media
from tests.engine.util import psnr


def _frame(index: int = 10) -> np.ndarray:
    with av.open(str(media("sr_gt_640x360.mkv"))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError("clip too short")


@pytest.mark.parametrize(("h", "w", "tile", "pad"), [(360, 640, 128, 10), (241, 321, 64, 7), (50, 30, 16, 0)])
def test_cores_cover_the_frame_exactly_once_and_windows_stay_inside(
    h: int, w: int, tile: int, pad: int
) -> None:
    covered = np.zeros((h, w), np.int32)
    for t in tiling.plan(h, w, tile, pad):
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert 0 <= t.wy0 <= t.y0 < t.y1 <= t.wy1 <= h and 0 <= t.wx0 <= t.x0 < t.x1 <= t.wx1 <= w
        assert t.y0 - t.wy0 == min(pad, t.y0) and t.wy1 - t.y1 == min(pad, h - t.y1)
    assert (covered == 1).all()


def test_whole_frame_when_it_fits_or_tile_is_zero() -> None:
    assert len(tiling.plan(90, 160, 160, 10)) == 1
    assert len(tiling.plan(360, 640, 0, 10)) == 1
    assert len(tiling.plan(360, 640, 128, 10)) == 15


def test_group_by_shape_batches_equal_windows_across_frames() -> None:
    tiles = tiling.plan(100, 100, 40, 5)
    groups = tiling.group_by_shape((i, t) for i in range(2) for t in tiles)
    assert sum(len(g) for g in groups) == 2 * len(tiles)
    for group in groups:
        assert len({t.window_shape for _, t in group}) == 1


def test_chunks_respect_batch_and_pixel_budget_and_split_evenly() -> None:
    group = [(i, tiling.plan(100, 100, 0, 0)[0]) for i in range(5)]  # five 100x100 whole-frame windows
    assert [len(c) for c in tiling.chunks(group, 4, None)] == [3, 2]
    assert [len(c) for c in tiling.chunks(group, 4, 20_000)] == [2, 2, 1]
    assert [len(c) for c in tiling.chunks(group, 4, 5_000)] == [1] * 5  # one window always runs
    assert [i for c in tiling.chunks(group, 2, None) for i, _ in c] == list(range(5))


@pytest.mark.slow
def test_tiled_output_has_no_seams_at_default_pad() -> None:
    """A 96x96 crop in 32 px tiles (9 tiles, 12 seams) vs the same crop whole: >= 45 dB."""
    crop = _frame()[100:196, 200:296]
    pad = tiling.DEFAULT_PAD
    whole = build_upscaler(UpscaleOptions(scale=4, device="cpu", precision="fp32", tile=0))
    tiled = build_upscaler(UpscaleOptions(scale=4, device="cpu", precision="fp32", tile=32, tile_pad=pad))
    a, b = whole.upscale([crop])[0], tiled.upscale([crop])[0]
    assert psnr(a, b) >= 45.0


@pytest.mark.slow
def test_batching_tiles_and_frames_gives_the_unbatched_result() -> None:
    """Same windows, other batch sizes: only float summation order changes (rare 1-LSB rounding flips)."""
    frame = _frame()[:80, :120]
    frames = [frame, np.ascontiguousarray(frame[::-1])]
    one = build_upscaler(UpscaleOptions(scale=2, device="cpu", precision="fp32", tile=32, batch=1))
    many = build_upscaler(UpscaleOptions(scale=2, device="cpu", precision="fp32", tile=32, batch=8))
    singles = [one.upscale([f])[0] for f in frames]
    batched = many.upscale(frames)
    for s, b in zip(singles, batched, strict=True):
        assert s.shape == (160, 240, 3)
        assert np.abs(s.astype(int) - b.astype(int)).max() <= 1
        assert psnr(s, b) >= 60.0


class _SmallMemory:
    """The real network behind a memory limit: batches above ``limit`` pixels raise CUDA's OOM error."""

    def __init__(self, model, limit: int) -> None:
        self.model, self.limit, self.scale = model, limit, model.scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] * x.shape[2] * x.shape[3] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated limit)")
        return self.model(x)


@pytest.mark.slow
def test_out_of_memory_halves_batch_then_tile_and_finishes() -> None:
    frame = _frame()[:128, :128]
    base = build_upscaler(UpscaleOptions(scale=4, device="cpu", precision="fp32", tile=0))
    assert isinstance(base, TorchUpscaler)
    tight = TorchUpscaler(
        _SmallMemory(base.model, limit=90 * 90),
        base.placement,
        scale=4,
        tile=0,
        tile_pad=10,
        batch=4,
        name="tight",
    )
    out = tight.upscale([frame, frame])
    # batch 4 -> 2 -> 1, then tile 128 -> 64 (64+2*10 = 84 px windows fit the 90x90 limit)
    assert (tight.batch, tight.tile, tight.oom_retries) == (1, 64, 3)
    assert psnr(out[0], base.upscale([frame])[0]) >= 45.0
    np.testing.assert_array_equal(out[0], out[1])


def test_out_of_memory_below_the_smallest_tile_is_an_error() -> None:
    from streamup.engine.upscaler import OutOfMemory

    base = build_upscaler(UpscaleOptions(scale=4, device="cpu", precision="fp32"))
    tight = TorchUpscaler(
        _SmallMemory(base.model, limit=10), base.placement, scale=4, tile=0, tile_pad=10, batch=1, name="t"
    )
    with pytest.raises(OutOfMemory, match="64 px"):
        tight.upscale([np.zeros((100, 100, 3), np.uint8)])


@pytest.mark.parametrize(
    ("model", "precision", "tile"),
    [
        ("realesr-animevideov3", "bf16", 384),
        ("realesr-animevideov3", "fp32", 256),
        ("RealESRGAN_x4plus", "bf16", 288),
    ],
)
def test_cpu_default_tile_follows_precision_and_memory_budget(model: str, precision: str, tile: int) -> None:
    """bf16 activations are half the bytes, so bf16 gets bigger cache-sized windows (384 px measured fastest
    on a Zen 4 EPYC, 256 px for fp32 on AVX2); RRDB stays within its 1 GiB per-call budget (288 px)."""
    up = build_upscaler(UpscaleOptions(scale=4, model=model, device="cpu", precision=precision))
    assert isinstance(up, TorchUpscaler)
    assert (up.tile, up.tile_pad, up.batch) == (tile, tiling.DEFAULT_PAD, tiling.CPU_BATCH)


def test_frames_come_back_contiguous_and_independent() -> None:
    """Frames are views of one output array: each is C-contiguous (encoders need it) and writable apart."""
    up = build_upscaler(UpscaleOptions(scale=2, model="realesr-animevideov3", device="cpu", precision="fp32"))
    crops = [np.ascontiguousarray(_frame(i)[:20, :24]) for i in (3, 4)]
    first, second = up.upscale(crops)
    assert first.shape == second.shape == (40, 48, 3)
    assert first.flags.c_contiguous and second.flags.c_contiguous
    before = second.copy()
    first[:] = 0
    np.testing.assert_array_equal(second, before)
