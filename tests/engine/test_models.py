"""Model files: what loads, what is refused (one line naming the file and what it is), what is shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from spandrel.architectures.Compact import Compact
from spandrel.architectures.ESRGAN import ESRGAN

from streamup.engine import loaded_model
from streamup.engine.device import choose
from streamup.engine.lanczos import LanczosUpscaler
from streamup.engine.loader import load_sr_model
from streamup.errors import ModelError
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler
from tests.conftest import SHARED_WEIGHTS
from tests.engine.util import psnr, reference

COMPACT = SHARED_WEIGHTS / "realesr-animevideov3.pth"


def _one_line(exc: pytest.ExceptionInfo[ModelError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    return message


def test_truncated_pth_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "cut.pth"
    bad.write_bytes(COMPACT.read_bytes()[: COMPACT.stat().st_size // 2])
    with pytest.raises(ModelError) as exc:
        build_upscaler(UpscaleOptions(model=str(bad)))
    assert "truncated or corrupt" in _one_line(exc, bad)


def test_text_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pth"
    bad.write_text("these are not weights\n")
    with pytest.raises(ModelError) as exc:
        build_upscaler(UpscaleOptions(model=str(bad)))
    assert "a text file" in _one_line(exc, bad)


def test_classifier_state_dict_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "classifier.pth"
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    net(torch.zeros(1, 3, 8, 8))
    torch.save(net.state_dict(), bad)
    with pytest.raises(ModelError) as exc:
        build_upscaler(UpscaleOptions(model=str(bad)))
    assert "not an architecture spandrel knows" in _one_line(exc, bad)


def test_known_non_sr_architecture_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "compact_x1.pth"  # spandrel knows it: a 1x Compact net is a restoration (denoise) model
    torch.save(Compact(num_feat=8, num_conv=2, upscale=1).state_dict(), bad)
    with pytest.raises(ModelError) as exc:
        build_upscaler(UpscaleOptions(model=str(bad)))
    assert "Compact Restoration model, not an image super-resolution model" in _one_line(exc, bad)


def test_network_that_cannot_reach_the_scale_is_refused(tmp_path: Path) -> None:
    x2 = tmp_path / "compact_x2.pth"
    torch.save(Compact(num_feat=8, num_conv=2, upscale=2).state_dict(), x2)
    assert build_upscaler(UpscaleOptions(scale=2, model=str(x2), device="cpu")).scale == 2
    with pytest.raises(ModelError) as exc:
        build_upscaler(UpscaleOptions(scale=4, model=str(x2), device="cpu"))
    assert "x2 RealESRGAN Compact model cannot give 4x output" in _one_line(exc, x2)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(ModelError) as exc:
        build_upscaler(UpscaleOptions(model=str(missing)))
    assert "not found" in _one_line(exc, missing)


def test_an_unknown_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown model 'RealESRGAN_x3'"):
        build_upscaler(UpscaleOptions(model="RealESRGAN_x3"))


def test_lanczos_needs_no_model() -> None:
    upscaler = build_upscaler(UpscaleOptions(scale=4, model="lanczos"))
    assert isinstance(upscaler, LanczosUpscaler)
    assert upscaler.upscale([np.zeros((5, 7, 3), np.uint8)])[0].shape == (20, 28, 3)


def test_models_are_loaded_once_per_process_and_placement() -> None:
    placement = choose("cpu", "fp32")
    first = loaded_model(COMPACT, placement)
    assert loaded_model(COMPACT, placement) is first
    a = build_upscaler(UpscaleOptions(scale=2, device="cpu", precision="fp32"))
    b = build_upscaler(UpscaleOptions(scale=4, device="cpu", precision="fp32"))
    assert a.model is b.model is first  # type: ignore[attr-defined]
    assert load_sr_model(COMPACT) is not first


def test_default_model_is_the_bundled_compact_one() -> None:
    upscaler = build_upscaler(UpscaleOptions(scale=2))
    assert upscaler.name == "realesr-animevideov3"


@pytest.mark.slow
def test_uint16_in_uint16_out_tracks_uint8() -> None:
    """A 16-bit frame comes back 16-bit at exact size, and agrees with the 8-bit run of the same picture."""
    frame8 = reference()["input/odd33x27"]
    frame16 = frame8.astype(np.uint16) * 257
    upscaler = build_upscaler(UpscaleOptions(scale=2, device="cpu", precision="fp32"))
    out8, out16 = upscaler.upscale([frame8])[0], upscaler.upscale([frame16])[0]
    assert out16.dtype == np.uint16 and out16.shape == (54, 66, 3)
    back = np.round(out16 / 257.0).astype(np.uint8)
    assert psnr(back, out8) >= 50.0
    assert out16.max() > 255  # full 16-bit range, not 8-bit values in a wider type


def test_x4plus_at_scale_2_prefers_a_local_x2plus(tmp_path: Path) -> None:
    torch.save(ESRGAN(num_filters=8, num_blocks=1, scale=2).state_dict(), tmp_path / "RealESRGAN_x2plus.pth")
    native = build_upscaler(UpscaleOptions(scale=2, model="RealESRGAN_x4plus", weights_dirs=(str(tmp_path),)))
    assert (native.name, native.model.scale) == ("RealESRGAN_x2plus", 2)  # type: ignore[attr-defined]
    assert native.upscale([np.zeros((6, 10, 3), np.uint8)])[0].shape == (12, 20, 3)
    assert build_upscaler(UpscaleOptions(scale=4, model="RealESRGAN_x4plus")).name == "RealESRGAN_x4plus"
