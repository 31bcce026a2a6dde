"""Where and in what precision the network runs.

GPU: CUDA in fp16 (half the memory traffic, tensor cores; Real-ESRGAN was released for fp16 inference).
CPU: fp32, or bf16 autocast only when the CPU has native bf16 dot products (AVX512-BF16 or AMX). Without them
bf16 is emulated: on an AVX2 EPYC its best matmul ran at 1.3 GFLOP/s against 173.9 in fp32
(benchmarks/results/floor-cpu-before-epyc-avx2.json), so it is never chosen by ``auto`` there. fp16 is
never run on the CPU (bf16 is the CPU's reduced precision).
Capabilities are detected, never assumed from a CPU model name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from streamup.errors import UsageError

log = logging.getLogger(__name__)

#: The cores torch's CPU kernels may use (its own default, which honours OMP_NUM_THREADS and the CPU
#: affinity), read before streamup splits them between lanes (``use_cpu_lanes``).
CPU_CORES = torch.get_num_threads()
#: The torch dtype of each precision ``options.PRECISIONS`` names (all but ``auto``).
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Placement:
    """A device and a precision. ``autocast`` means weights stay fp32 and ops run in ``dtype``."""

    device: torch.device
    precision: str

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]

    @property
    def autocast(self) -> bool:
        return self.device.type == "cpu" and self.precision == "bf16"

    @property
    def weights_dtype(self) -> torch.dtype:
        return torch.float32 if self.autocast else self.dtype


def _cpu_flag(name: str) -> bool:
    """A private torch.cpu probe (present in torch >= 2.3); absent means "cannot tell", treated as no."""
    probe = getattr(torch.cpu, name, None)
    return bool(probe()) if probe else False


def cpu_capability() -> str:
    return torch.backends.cpu.get_cpu_capability()


def cpu_bf16_fast() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX512-BF16), as reported by torch itself."""
    return _cpu_flag("_is_amx_tile_supported") or (
        cpu_capability().startswith("AVX512") and _cpu_flag("_is_avx512_bf16_supported")
    )


def choose(device: str = "auto", precision: str = "auto", require_gpu: bool = False) -> Placement:
    """The placement for a request, falling back from GPU to CPU with a warning unless ``require_gpu``.

    The values come from ``UpscaleOptions``, which has checked them against ``options.DEVICES`` and
    ``options.PRECISIONS``; what is left to refuse depends on this machine."""
    cuda = torch.cuda.is_available()
    if require_gpu and not cuda:
        raise UsageError(f"--require-gpu: no CUDA device available (torch {torch.__version__})")
    if device == "gpu" and not cuda:
        log.warning("no CUDA device available; running on the CPU (pass --require-gpu to make this an error)")
        if precision == "fp16":
            log.warning("fp16 is not run on the CPU; using %s", _cpu_auto())
            precision = "auto"
    if cuda and device != "cpu":
        return Placement(torch.device("cuda"), "fp16" if precision == "auto" else precision)
    if precision == "fp16":
        raise UsageError("fp16 is not supported on the CPU: use --precision fp32 or bf16")
    if precision == "bf16" and not cpu_bf16_fast():
        log.warning(
            "this CPU (%s) has no native bf16: bf16 runs several times slower than fp32", cpu_capability()
        )
    return Placement(torch.device("cpu"), _cpu_auto() if precision == "auto" else precision)


def use_cpu_lanes(lanes: int) -> int:
    """Split the CPU's cores between ``lanes`` concurrent upscale calls: torch's intra-op threads (one
    process-wide setting) become ``CPU_CORES // lanes``. Returns the lanes that fit (at most one per core)."""
    lanes = max(1, min(lanes, CPU_CORES))
    torch.set_num_threads(max(1, CPU_CORES // lanes))
    return lanes


def _cpu_auto() -> str:
    return "bf16" if cpu_bf16_fast() else "fp32"


def describe() -> dict[str, Any]:
    """What this machine offers the engine, for ``streamup doctor`` and benchmark records."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_capability": cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_avx512_bf16": _cpu_flag("_is_avx512_bf16_supported"),
        "cpu_amx": _cpu_flag("_is_amx_tile_supported"),
        "cpu_bf16_fast": cpu_bf16_fast(),
    }
    auto = choose()
    info["auto_device"] = str(auto.device)
    info["auto_precision"] = auto.precision
    return info
