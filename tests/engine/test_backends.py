"""The backend table: one list, the vocabulary agrees with it, ``auto`` and a named backend pick as told."""

from __future__ import annotations

import numpy as np
import pytest

from streamup import build_upscaler as root_door
from streamup.engine import backends
from streamup.engine.lanczos import LanczosUpscaler
from streamup.engine.upscaler import TorchUpscaler
from streamup.errors import UsageError
from streamup.options import BACKENDS, UpscaleOptions
from streamup.pipeline import build_upscaler


def test_the_vocabulary_lists_the_table() -> None:
    assert ("auto", *backends.TABLE) == BACKENDS


@pytest.mark.parametrize(("options", "backend", "model"), [
    (UpscaleOptions(), "torch", backends.DEFAULT_MODEL),
    (UpscaleOptions(model="lanczos"), "lanczos", "lanczos"),
    (UpscaleOptions(model="RealESRGAN_x4plus"), "torch", "RealESRGAN_x4plus"),
    (UpscaleOptions(model="/weights/mine.pth"), "torch", "/weights/mine.pth"),
    (UpscaleOptions(backend="lanczos"), "lanczos", "lanczos"),
    (UpscaleOptions(backend="torch"), "torch", backends.DEFAULT_MODEL),
    (UpscaleOptions(backend="lanczos", model="lanczos"), "lanczos", "lanczos"),
])
def test_choose_picks_the_backend_and_names_the_model(options: UpscaleOptions, backend: str,
                                                      model: str) -> None:
    chosen, named = backends.choose(options)
    assert (chosen.name, named) == (backend, model)


def test_a_named_backend_refuses_a_model_it_does_not_run() -> None:
    with pytest.raises(UsageError, match="backend lanczos does not run model 'RealESRGAN_x4plus'"):
        build_upscaler(UpscaleOptions(backend="lanczos", model="RealESRGAN_x4plus"))
    with pytest.raises(UsageError, match="backend torch does not run model 'lanczos'"):
        build_upscaler(UpscaleOptions(backend="torch", model="lanczos"))


def test_lanczos_through_the_one_door_upscales_exactly() -> None:
    assert root_door is build_upscaler  # streamup.build_upscaler is the pipeline's door, not a second one
    upscaler = build_upscaler(UpscaleOptions(scale=4, backend="lanczos"))
    assert isinstance(upscaler, LanczosUpscaler) and upscaler.name == "lanczos"
    frame = np.arange(5 * 7 * 3, dtype=np.uint16).reshape(5, 7, 3) * 300
    out = upscaler.upscale([frame])[0]
    assert out.shape == (20, 28, 3) and out.dtype == np.uint16


def test_torch_through_the_one_door_runs_the_bundled_model() -> None:
    options = UpscaleOptions(scale=2, backend="torch", device="cpu", precision="fp32", lanes=1)
    upscaler = build_upscaler(options)
    assert isinstance(upscaler, TorchUpscaler)
    assert (upscaler.name, upscaler.device, upscaler.precision) == (backends.DEFAULT_MODEL, "cpu", "fp32")
    out = upscaler.upscale([np.full((8, 12, 3), 128, np.uint8)])[0]
    assert out.shape == (16, 24, 3) and out.dtype == np.uint8
