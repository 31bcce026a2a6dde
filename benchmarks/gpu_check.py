"""The prepared GPU check of the engine: run once on a CUDA machine, a few minutes at most.

    .venv/bin/python benchmarks/gpu_check.py     # prints a report; writes $OUT/gpu_check.json if OUT is set

1. fp16 parity: CUDA fp16 vs CUDA fp32 of the same 640x360 frame, for realesr-animevideov3 and
   RealESRGAN_x4plus, PSNR >= 45 dB; plus CUDA fp32 vs the RealESRGANer fixtures (>= 60 dB).
2. OOM retry: a small ``torch.cuda.set_per_process_memory_fraction`` forces out-of-memory on whole 1080p
   frames of x4plus in a batch of 4; the upscaler must halve batch, then tile, count the retries, and still
   produce output within 45 dB of the unconstrained run.
3. Model-only frames/s at 1920x1080 (x2 output) for realesr-animevideov3 and RealESRGAN_x4plus with the
   default tile and batch.

Without CUDA it says so and exits 0: nothing to check. Exit status 1 when a check fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("STREAMUP_WEIGHTS_DIR", str(REPO.parent / "shared" / "weights"))

from streamup.engine import build_upscaler, device  # noqa: E402
from streamup.engine.upscaler import TorchUpscaler  # noqa: E402
from streamup.options import UpscaleOptions  # noqa: E402
from tests.engine.util import psnr, reference  # noqa: E402

MEDIA = REPO.parent / "shared" / "media"
MODELS = ("realesr-animevideov3", "RealESRGAN_x4plus")


def frames(clip: str, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(MEDIA / clip)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def upscaler(model: str, precision: str, scale: int = 4, **kw) -> TorchUpscaler:
    built = build_upscaler(UpscaleOptions(scale=scale, model=model, device="gpu", precision=precision, **kw))
    assert isinstance(built, TorchUpscaler)
    return built


def check_parity(report: dict) -> bool:
    ok = True
    frame = frames("sr_gt_640x360.mkv", 1)[0]
    for model in MODELS:
        a = upscaler(model, "fp32").upscale([frame])[0]
        b = upscaler(model, "fp16").upscale([frame])[0]
        value = psnr(a, b)
        report[f"fp16_vs_fp32_psnr/{model}"] = value
        ok &= value >= 45.0
        print(f"fp16 vs fp32 {model} 640x360: {value:.2f} dB (need >= 45)", flush=True)
    for key, expected in reference().items():
        if key.startswith(("input/", "meta/")):
            continue
        model, crop, xscale, tile = key.split("/")
        up = upscaler(
            model, "fp32", int(xscale[1:]), tile=int(tile[4:]), tile_pad=int(reference()["meta/tile_pad"])
        )
        value = psnr(up.upscale([reference()[f"input/{crop}"]])[0], expected)
        report[f"cuda_fp32_vs_realesrganer/{key}"] = value
        ok &= value >= 60.0
        print(f"CUDA fp32 vs RealESRGANer {key}: {value:.2f} dB (need >= 60)", flush=True)
    return ok


def check_oom_retry(report: dict) -> bool:
    batch = frames("bench_1920x1080_h264_aac.mp4", 4)
    free = upscaler("RealESRGAN_x4plus", "fp16", scale=2)
    expected = free.upscale(batch[:1])[0]
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(1.0, 3 * 2**30 / total)  # ~3 GiB: whole 1080p x4plus frames need ~10 GiB each in fp16
    torch.cuda.set_per_process_memory_fraction(fraction)
    try:
        tight = upscaler("RealESRGAN_x4plus", "fp16", scale=2, tile=0, batch=4)
        start = time.perf_counter()
        out = tight.upscale(batch)
        took = time.perf_counter() - start
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    value = psnr(out[0], expected)
    report["oom"] = {
        "memory_fraction": fraction,
        "retries": tight.oom_retries,
        "final_batch": tight.batch,
        "final_tile": tight.tile,
        "psnr_vs_unconstrained": value,
        "seconds": took,
    }
    print(f"OOM retry: {report['oom']}", flush=True)
    return tight.oom_retries > 0 and value >= 45.0 and len(out) == 4 and out[0].shape == (2160, 3840, 3)


def measure_speed(report: dict) -> None:
    batch = frames("bench_1920x1080_h264_aac.mp4", 8)
    for model, count in (("realesr-animevideov3", 24), ("RealESRGAN_x4plus", 8)):
        up = upscaler(model, "fp16", scale=2)
        step = up.batch_frames
        up.upscale(batch[:step])  # warm-up: cudnn algorithm choice, allocator growth
        torch.cuda.synchronize()
        start = time.perf_counter()
        done = 0
        while done < count:
            up.upscale([batch[(done + i) % len(batch)] for i in range(step)])
            done += step
        torch.cuda.synchronize()
        fps = done / (time.perf_counter() - start)
        report[f"fps_1080p_x2/{model}"] = {"fps": fps, "tile": up.tile, "batch": up.batch}
        print(
            f"{model} 1920x1080 -> x2, fp16, tile {up.tile}, batch {up.batch}: {fps:.2f} frames/s", flush=True
        )


def main() -> int:
    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device (torch {torch.__version__}); nothing to check")
        return 0
    report: dict = {"device": device.describe()}
    print(json.dumps(report["device"]), flush=True)
    ok = check_parity(report)
    ok &= check_oom_retry(report)
    measure_speed(report)
    report["ok"] = bool(ok)
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    print("gpu_check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
