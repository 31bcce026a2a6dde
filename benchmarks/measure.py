"""The child process of every timed run; prints one JSON line (see ``benchmarks.common.measure``).

  pipeline  streamup.upscale end to end (decode → engine → encode, real files); per-frame times come from the
            progress callback, so the steady state excludes model load and the first (warm-up) frames.
  engine    model only: one batch decoded up front, then ``build_upscaler(options).upscale`` timed per call.
  network   the bare network: one fp32 (CPU) / fp16 (GPU) forward of a whole frame, no tiling, no conversions.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.common import MODELS, WEIGHTS


def peak_memory() -> dict[str, int | None]:
    import torch

    vram = torch.cuda.max_memory_reserved() if torch.cuda.is_available() else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {"peak_rss_bytes": rss, "peak_vram_bytes": vram}


def options(model: str, scale: int, device: str) -> Any:
    from streamup.options import UpscaleOptions

    name = MODELS[model].name if model in MODELS else model
    return UpscaleOptions(scale=scale, model=name, device=device, weights_dirs=(str(WEIGHTS),))


def steady(marks: list[tuple[float, int]], end: float, frames: int, warmup: int) -> float | None:
    """Seconds per frame from the first progress report at or past ``warmup`` frames to the run's end.

    Progress comes after each inferred batch, before encoding; measuring to the end of ``upscale`` (output
    closed) makes the encoder's drain count, so this is end-to-end throughput, not the model's alone.
    """
    after = [m for m in marks if m[1] >= warmup and m[1] < frames]
    if not after:
        return None
    t0, n0 = after[0]
    return (end - t0) / (frames - n0)


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    import streamup
    from streamup.engine import build_upscaler

    marks: list[tuple[float, int]] = []

    def progress(p: Any) -> None:
        marks.append((time.perf_counter(), int(p.frames_done)))

    start = time.perf_counter()
    opts = options(args.model, args.scale, args.device)
    result = streamup.upscale(args.src, args.dst, opts, progress=progress)
    end = time.perf_counter()
    # The engine caches the loaded network, so this only reads the tiling the run used.
    upscaler = build_upscaler(opts)
    return {
        "seconds_total": end - start,
        "frames": result.frames,
        "steady_s_per_frame": steady(marks, end, result.frames, args.warmup),
        "progress_reports": len(marks),
        "batch_frames": upscaler.batch_frames,
        "tile": getattr(upscaler, "tile", None),
        "tile_pad": getattr(upscaler, "tile_pad", None),
        "stage_busy_s": dict(result.stage_busy_s),
        "model_used": result.model,
        **peak_memory(),
    }


def decode(src: str, count: int) -> list[np.ndarray]:
    with av.open(src) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def run_engine(args: argparse.Namespace) -> dict[str, Any]:
    """``--warmup`` untimed calls, then ``--frames`` timed calls, each with one batch of ``batch_frames``."""
    from streamup.engine import build_upscaler

    start = time.perf_counter()
    upscaler = build_upscaler(options(args.model, args.scale, args.device))
    load = time.perf_counter() - start
    batch = decode(args.src, upscaler.batch_frames)
    batch += batch[-1:] * (upscaler.batch_frames - len(batch))  # a clip shorter than a batch: repeat a frame
    times = []
    for _ in range(args.warmup + args.frames):
        t = time.perf_counter()
        upscaler.upscale(batch)
        times.append((time.perf_counter() - t) / len(batch))
    steady_times = times[args.warmup :]
    h, w = batch[0].shape[:2]
    return {
        "load_seconds": load,
        "width": w,
        "height": h,
        "batch_frames": len(batch),
        "tile": getattr(upscaler, "tile", None),
        "tile_pad": getattr(upscaler, "tile_pad", None),
        "s_per_frame": steady_times,
        "s_per_frame_min": min(steady_times),
        **peak_memory(),
    }


def run_network(args: argparse.Namespace) -> dict[str, Any]:
    import spandrel
    import torch

    cuda = args.device == "gpu" and torch.cuda.is_available()
    dev, dtype = (torch.device("cuda"), torch.float16) if cuda else (torch.device("cpu"), torch.float32)
    net = spandrel.ModelLoader().load_from_file(str(MODELS[args.model].weights)).model.eval().to(dev, dtype)
    frame = decode(args.src, 1)[0]
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].to(dev, dtype) / 255
    times = []
    with torch.inference_mode():
        for _ in range(args.warmup + args.frames):
            t = time.perf_counter()
            net(x)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    steady_times = times[args.warmup :]
    return {
        "width": frame.shape[1],
        "height": frame.shape[0],
        "dtype": str(dtype),
        "s_per_frame": steady_times,
        "s_per_frame_min": min(steady_times),
        **peak_memory(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["pipeline", "engine", "network"])
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst")
    parser.add_argument("--model", required=True)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=3, help="timed calls after warm-up (engine, network)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed calls (engine, network); pipeline: frames before the steady state")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run = {"pipeline": run_pipeline, "engine": run_engine, "network": run_network}[args.kind]
    if args.kind == "pipeline" and not args.dst:
        parser.error("pipeline needs --dst")
    Path(args.dst or ".").parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
