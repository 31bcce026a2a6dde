"""The outscale resize: OpenCV INTER_LANCZOS4 arithmetic (checked bit for bit by the x2 parity fixtures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamup.engine.resize import downscale, lanczos4_weights


def test_weights_sum_to_one_and_are_symmetric_at_half_a_pixel() -> None:
    w = lanczos4_weights(0.5)
    assert sum(w) == pytest.approx(1.0, abs=1e-6)
    assert w == pytest.approx(w[::-1], abs=1e-7)
    assert lanczos4_weights(0.0) == [0, 0, 0, 1, 0, 0, 0, 0]


@pytest.mark.parametrize(("dtype", "peak"), [(torch.uint8, 255), (torch.int32, 65535)])
@pytest.mark.parametrize("factor", [2, 4])
def test_flat_image_stays_flat_and_sizes_are_exact(dtype: torch.dtype, peak: int, factor: int) -> None:
    for value in (0, peak // 3, peak):
        image = torch.full((1, 3, 4 * 9, 4 * 7), value, dtype=dtype)
        out = downscale(image, factor)
        assert out.shape == (1, 3, 36 // factor, 28 // factor) and out.dtype == dtype
        assert (out == value).all()


def test_halving_a_two_pixel_checker_gives_mid_grey() -> None:
    """At factor 2 every output pixel sits between two source pixels: a 1 px checker averages to grey."""
    checker = torch.from_numpy((np.indices((32, 32)).sum(0) % 2 * 255).astype(np.uint8))
    out = downscale(checker.expand(1, 3, 32, 32), 2)
    inner = out[0, 0, 3:-3, 3:-3].to(torch.int32)
    assert (inner - 128).abs().max() <= 1


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("shape", [(64, 48, 3), (36, 52, 3), (8, 12, 3)])
def test_bit_identical_to_cv2_lanczos4(factor: int, shape: tuple[int, int, int]) -> None:
    """Needs opencv (the [reference] extra); random noise drives the fixed-point sums to their extremes."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(factor)
    for dtype, peak in ((np.uint8, 255), (np.uint16, 65535)):
        image = rng.integers(0, peak + 1, shape, dtype=dtype)
        expected = cv2.resize(
            image, (shape[1] // factor, shape[0] // factor), interpolation=cv2.INTER_LANCZOS4
        )
        tensor = torch.from_numpy(image.astype(np.int32) if dtype == np.uint16 else image).permute(2, 0, 1)
        out = downscale(tensor[None], factor)[0].permute(1, 2, 0).numpy().astype(dtype)
        np.testing.assert_array_equal(out, expected)
