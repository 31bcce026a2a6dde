"""Device and precision choice: detected capabilities, GPU fallback, and the refusals."""

from __future__ import annotations

import logging

import pytest
import torch

from streamup.engine import device
from streamup.errors import UsageError

no_cuda = pytest.mark.skipif(
    torch.cuda.is_available(), reason="fallback behaviour is for machines without CUDA"
)


def test_cpu_auto_precision_follows_the_detected_bf16_support(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device.choose("cpu").precision == ("bf16" if device.cpu_bf16_fast() else "fp32")
    monkeypatch.setattr(device, "cpu_bf16_fast", lambda: True)
    assert device.choose("cpu") == device.Placement(torch.device("cpu"), "bf16")
    assert device.choose("cpu").autocast and device.choose("cpu").weights_dtype == torch.float32
    monkeypatch.setattr(device, "cpu_bf16_fast", lambda: False)
    assert device.choose("cpu").precision == "fp32"


def test_bf16_fast_needs_the_instructions_not_just_avx512(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(device, "_cpu_flag", lambda name: False)
    assert not device.cpu_bf16_fast()
    monkeypatch.setattr(device, "_cpu_flag", lambda name: name == "_is_avx512_bf16_supported")
    assert device.cpu_bf16_fast()
    monkeypatch.setattr(device, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(device, "_cpu_flag", lambda name: name == "_is_amx_tile_supported")
    assert device.cpu_bf16_fast()


def test_fp16_is_never_run_on_the_cpu() -> None:
    with pytest.raises(UsageError, match="fp16 is not supported on the CPU"):
        device.choose("cpu", "fp16")


@no_cuda
def test_gpu_without_cuda_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        placement = device.choose("gpu", "fp16")
    assert placement.device.type == "cpu" and placement.precision != "fp16"
    assert "no CUDA device available" in caplog.text


@no_cuda
def test_require_gpu_without_cuda_is_an_error() -> None:
    with pytest.raises(UsageError, match="--require-gpu"):
        device.choose("gpu", require_gpu=True)


def test_describe_reports_what_was_detected() -> None:
    info = device.describe()
    assert info["torch"] == torch.__version__
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["cuda_available"] == torch.cuda.is_available()
    assert info["auto_precision"] in ("fp16", "bf16", "fp32")
