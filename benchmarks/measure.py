"""The child process of every timed run; prints one JSON line (see ``benchmarks.common.measure``).

  pipeline  streamup.upscale end to end (decode → engine → encode, real files) on a short and a long clip
            of the same footage: steady s/frame = time difference / frame difference.
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


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """Two runs in one process, ``--src-short`` then ``--src``: the difference of their times over the
    difference of their frames is the steady-state cost per frame, everything that happens once per run
    (model load, container set-up, the encoder's start and final flush) cancelling out.

    The network is loaded (and cached by the engine) before either run; ``--warmup-run`` adds an untimed run
    of the short clip first, for devices whose first calls tune kernels (cuDNN).
    """
    from streamup import upscale
    from streamup.engine import build_upscaler

    opts = options(args.model, args.scale, args.device)
    start = time.perf_counter()
    upscaler = build_upscaler(opts)
    load = time.perf_counter() - start
    dst = Path(args.dst)
    if args.warmup_run:
        upscale(args.src_short, str(dst.with_name("warmup-" + dst.name)), opts)
    timed = []
    for src, out in ((args.src_short, dst.with_name("short-" + dst.name)), (args.src, dst)):
        start = time.perf_counter()
        result = upscale(src, str(out), opts)
        timed.append((time.perf_counter() - start, result))
    (t_short, short), (t_long, long) = timed
    return {
        "load_seconds": load,
        "frames_short": short.frames,
        "frames": long.frames,
        "seconds_short": t_short,
        "seconds_total": t_long,
        "steady_s_per_frame": (t_long - t_short) / (long.frames - short.frames),
        "stage_busy_s": dict(long.stage_busy_s),
        "batch_frames": upscaler.batch_frames,
        "tile": getattr(upscaler, "tile", None),
        "tile_pad": getattr(upscaler, "tile_pad", None),
        "model_used": long.model,
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
    parser.add_argument("--src-short", help="pipeline: the same footage, fewer frames (the baseline run)")
    parser.add_argument("--warmup-run", action="store_true", help="pipeline: one untimed run first")
    parser.add_argument("--frames", type=int, default=3, help="engine, network: timed calls after warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="engine, network: untimed calls first")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run = {"pipeline": run_pipeline, "engine": run_engine, "network": run_network}[args.kind]
    if args.kind == "pipeline" and not (args.dst and args.src_short):
        parser.error("pipeline needs --dst and --src-short")
    Path(args.dst or ".").parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
