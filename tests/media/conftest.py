"""Fixtures of the media tests: the studio/archive clips, built once per session with Debian's ffmpeg, and
their upscales, made once per session (several tests look at the same output)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from streamup.engine.lanczos import LanczosUpscaler
from streamup.options import UpscaleOptions
from streamup.pipeline import UpscaleResult, upscale
from tests.media import clips


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``clip(name)``: the path of a clip from ``tests.media.clips.RECIPES``, made on first use."""
    folder = tmp_path_factory.mktemp("clips")
    return lambda name: clips.make(name, folder)


Upscaled = Callable[..., tuple[Path, UpscaleResult]]


@pytest.fixture(scope="session")
def upscaled(clip: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Upscaled:
    """``upscaled(name, ext, **options)``: clip ``name`` upscaled x2 by lanczos into a new ``ext`` file
    (``superfast`` encoding unless ``options`` say otherwise), once per session; (path, result).

    The lanczos upscaler is passed in, so these tests never import torch."""
    folder = tmp_path_factory.mktemp("upscaled")
    done: dict[tuple, tuple[Path, UpscaleResult]] = {}
    count = itertools.count()

    def run(name: str, ext: str, **options: object) -> tuple[Path, UpscaleResult]:
        key = (name, ext, tuple(sorted(options.items())))
        if key not in done:
            out = folder / f"{next(count)}_{Path(name).stem}{ext}"
            settings = {"preset": "superfast", **options}
            opts = UpscaleOptions(scale=2, model="lanczos", **settings)  # type: ignore[arg-type]
            done[key] = out, upscale(str(clip(name)), str(out), opts, upscaler=LanczosUpscaler(2))
        return done[key]

    return run
