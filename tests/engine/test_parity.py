"""Parity with the official implementation: streamup vs RealESRGANer outputs on crops of real frames."""

from __future__ import annotations

import pytest

from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler
from tests.engine.util import psnr, reference

CASES = sorted(k for k in reference() if not k.startswith(("input/", "meta/")))


def _run(key: str, precision: str):
    model, crop, xscale, tile = key.split("/")
    upscaler = build_upscaler(
        UpscaleOptions(
            scale=int(xscale[1:]),
            model=model,
            device="cpu",
            precision=precision,
            tile=int(tile.removeprefix("tile")),
            tile_pad=int(reference()["meta/tile_pad"]),
        )
    )
    return upscaler.upscale([reference()[f"input/{crop}"]])[0]


@pytest.mark.slow
@pytest.mark.parametrize("key", CASES)
def test_fp32_matches_realesrganer(key: str) -> None:
    out = _run(key, "fp32")
    assert psnr(out, reference()[key]) >= 60.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "key", ["realesr-animevideov3/odd33x27/x4/tile0", "realesr-animevideov3/odd33x27/x2/tile0"]
)
def test_bf16_close_to_realesrganer(key: str) -> None:
    out = _run(key, "bf16")
    assert psnr(out, reference()[key]) >= 45.0


def test_fixtures_cover_the_issue_matrix() -> None:
    """Every model x outscale x tiled/untiled combination the issue asks for has a reference."""
    for model in ("realesr-animevideov3", "RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B"):
        for scale in (2, 4):
            assert f"{model}/gt48x40/x{scale}/tile0" in CASES
            assert f"{model}/gt48x40/x{scale}/tile{int(reference()['meta/tile'])}" in CASES
