"""Shared helpers of the engine tests: the parity fixtures and PSNR."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures" / "reference.npz"


@cache
def reference() -> dict[str, np.ndarray]:
    """RealESRGANer outputs from tools/make_reference_fixtures.py (keys model/crop/xS/tileT, input/crop)."""
    with np.load(FIXTURES) as data:
        return {key: data[key] for key in data.files}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over the dtype's full range; inf for identical arrays."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    peak = float(np.iinfo(a.dtype).max)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)
