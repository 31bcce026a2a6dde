"""Model-only speed of the engine on this machine: seconds per frame, no decode/encode.

    .venv/bin/python benchmarks/engine_speed.py --threads 1          # the closing-note table (~3 minutes)
    .venv/bin/python benchmarks/engine_speed.py --model RealESRGAN_x4plus --crop 128x128 --frames 1

Frames are real (sr_gt_640x360.mkv). The RRDB models run on a 320x180 quarter frame and bf16 on a 160x90
crop; their times are scaled to 640x360 by pixel count, and the printed line says so. With the default 256 px
CPU tiles a whole frame is cut into windows of the same order anyway, so the scaling is close; it slightly
flatters crops that need fewer windows (less pad). fp32 is also timed on the bf16 crop so the two compare
like for like. Uses ``STREAMUP_WEIGHTS_DIR`` (default ../shared/weights).

Wall time and process CPU time are both printed. On a shared, oversubscribed machine neither is clean with
2 threads: OpenMP threads spin while their partner is descheduled, inflating both (a 34x34 x4plus forward
took 2.7-5.7 CPU-s with 2 threads against 0.63 s with 1 under load 6). ``--threads 1`` gives the steady
per-core figure; an idle 2-core machine runs at most 2x faster than that.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import av
import numpy as np
import torch

from streamup.engine import device
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "media" / "sr_gt_640x360.mkv"
FULL = (360, 640)

# model, precision, crop (h, w) or None for the full frame, frames timed
PLAN = [
    ("realesr-animevideov3", "fp32", None, 3),
    ("realesr-animevideov3", "fp32", (90, 160), 2),
    ("realesr-animevideov3", "bf16", (90, 160), 1),
    ("RealESRGAN_x4plus_anime_6B", "fp32", (180, 320), 1),
    ("RealESRGAN_x4plus", "fp32", (180, 320), 1),
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def frames(count: int, crop: tuple[int, int] | None) -> list[np.ndarray]:
    out = []
    with av.open(str(CLIP)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            out.append(np.ascontiguousarray(rgb[: crop[0], : crop[1]]) if crop else rgb)
            if len(out) == count:
                return out
    return out


def measure(model: str, precision: str, crop: tuple[int, int] | None, count: int, args) -> None:
    options = UpscaleOptions(
        scale=args.scale, model=model, device="cpu", precision=precision, tile=args.tile, batch=args.batch
    )
    upscaler = build_upscaler(options)
    if args.no_channels_last:
        upscaler.channels_last = False  # type: ignore[attr-defined]
    batch = frames(count + 1, crop)
    upscaler.upscale([np.ascontiguousarray(batch[0][:64, :64])])  # warm-up: first-call allocations
    start, cpu_start = time.perf_counter(), time.process_time()
    for f in batch[1:]:
        upscaler.upscale([f])
    per_frame = (time.perf_counter() - start) / count
    cpu_per_frame = (time.process_time() - cpu_start) / count
    h, w = batch[0].shape[:2]
    scale_up = (FULL[0] * FULL[1]) / (h * w)
    full = per_frame * scale_up
    note = "" if (h, w) == FULL else f" (measured on {w}x{h}, scaled by pixel count)"
    tile = upscaler.tile  # type: ignore[attr-defined]
    print(
        f"{model:28s} {precision:5s} x{args.scale} tile={tile} batch={upscaler.batch_frames} "
        f"channels_last={upscaler.channels_last}: {per_frame:7.3f} s/frame at {w}x{h} -> "
        f"{full:8.2f} s/frame at 640x360{note}; CPU time {cpu_per_frame * scale_up:8.2f} s/frame at 640x360",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="engine model-only speed on the CPU")
    parser.add_argument("--model")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--crop", help="HxW crop, e.g. 90x160; default full 640x360")
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--tile", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--no-channels-last", action="store_true", help="feed contiguous NCHW input")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("STREAMUP_WEIGHTS_DIR", str(REPO.parent / "shared" / "weights"))
    info = device.describe()
    print(
        f"CPU: {cpu_name()} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()}), "
        f"capability {info['cpu_capability']}, bf16 native: {info['cpu_bf16_fast']}; torch {info['torch']}"
    )
    if args.model:
        crop = tuple(int(v) for v in args.crop.split("x")) if args.crop else None
        measure(args.model, args.precision, crop, args.frames, args)  # type: ignore[arg-type]
        return
    for model, precision, crop, count in PLAN:
        measure(model, precision, crop, count, args)


if __name__ == "__main__":
    main()
