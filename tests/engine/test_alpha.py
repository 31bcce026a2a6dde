"""AlphaUpscaler: RGB through the wrapped upscaler, alpha through lanczos, one frame of the right size."""

from __future__ import annotations

import numpy as np
import pytest

from streamup.engine.alpha import AlphaUpscaler, upscale_plane
from streamup.engine.lanczos import LanczosUpscaler


class _Recording(LanczosUpscaler):
    """The real lanczos upscaler, remembering what it was handed."""

    def __init__(self) -> None:
        super().__init__(2, batch_frames=3)
        self.seen: list[np.ndarray] = []

    def upscale(self, frames):  # type: ignore[no-untyped-def]
        self.seen.extend(frames)
        return super().upscale(frames)


@pytest.mark.parametrize(("dtype", "peak"), [(np.uint8, 255), (np.uint16, 65535)])
def test_rgba_frames_split_and_join(dtype: type, peak: int) -> None:
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, peak, (2, 24, 32, 4), endpoint=True).astype(dtype)
    rgba[..., 3] = np.linspace(0, peak, 32).astype(dtype)  # a horizontal ramp
    inner = _Recording()
    up = AlphaUpscaler(inner)
    out = up.upscale(list(rgba))
    assert [o.shape for o in out] == [(48, 64, 4)] * 2 and out[0].dtype == dtype
    assert all(s.shape == (24, 32, 3) for s in inner.seen)  # the network never sees alpha
    colour = LanczosUpscaler(2).upscale([np.ascontiguousarray(rgba[1, ..., :3])])[0]
    assert np.array_equal(out[1][..., :3], colour)
    assert np.array_equal(out[1][..., 3], upscale_plane(rgba[1, ..., 3], 2))
    ramp = out[0][10, :, 3].astype(float)
    assert ramp[0] <= 0.01 * peak and ramp[-1] >= 0.99 * peak and np.all(np.diff(ramp) >= -0.005 * peak)


def test_rgb_frames_pass_straight_through_and_attributes_are_the_inner_ones() -> None:
    inner = _Recording()
    up = AlphaUpscaler(inner)
    frame = np.zeros((8, 8, 3), np.uint8)
    assert up.upscale([frame])[0].shape == (16, 16, 3) and inner.seen[0] is frame
    assert (up.scale, up.batch_frames, up.name, up.device, up.precision, up.oom_retries) == (
        2, 3, "lanczos", "cpu", "fp32", 0)
