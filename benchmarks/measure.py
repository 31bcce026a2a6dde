"""The child process of every timed run; prints one JSON line (see ``benchmarks.common.measure``).

  pipeline  streamup.upscale end to end (decode → engine → encode, real files) on a short and a long clip
            of the same footage: steady s/frame = time difference / frame difference.
  engine    model only: one batch decoded up front, then ``build_upscaler(options).upscale`` timed per call
            (one call per lane at once: the engine's throughput as the pipeline drives it).
  network   the bare network: one forward of a whole frame in the engine's precision and layout (bf16
            autocast + channels_last on a CPU with native bf16, fp32 on other CPUs, fp16 on a GPU), no tiling,
            no conversions: what the engine is compared with.
  peak      the best square-matmul GFLOP/s of one dtype, by process CPU time (see ``matmul_peak``).

Every kind reports process CPU time next to wall time: on a machine shared with other jobs wall time measures
the neighbours, CPU time (with ``--threads 1``, no OpenMP spinning) measures the work.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import resource
import sys
import tempfile
import threading
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


def options(args: argparse.Namespace) -> Any:
    from streamup.options import UpscaleOptions

    name = MODELS[args.model].name if args.model in MODELS else args.model
    return UpscaleOptions(scale=args.scale, model=name, device=args.device, weights_dirs=(str(WEIGHTS),),
                          precision=args.precision, tile=args.tile, lanes=args.lanes)


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, process CPU) seconds since ``start``."""
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    """Two runs in one process, ``--src-short`` then ``--src``: the difference of their times over the
    difference of their frames is the steady-state cost per frame, everything that happens once per run
    (model load, container set-up, the encoder's start and final flush) cancelling out.

    The network is loaded (and cached by the engine) before either run; ``--warmup-run`` adds an untimed run
    of the short clip first, for devices whose first calls tune kernels (cuDNN).
    """
    from streamup import upscale
    from streamup.pipeline import build_upscaler

    opts = options(args)
    start = time.perf_counter()
    upscaler = build_upscaler(opts)
    load = time.perf_counter() - start
    dst = Path(args.dst)
    if args.warmup_run:
        upscale(args.src_short, str(dst.with_name("warmup-" + dst.name)), opts)
    timed = []
    for src, out in ((args.src_short, dst.with_name("short-" + dst.name)), (args.src, dst)):
        begin = clock()
        result = upscale(src, str(out), opts)
        timed.append((*since(begin), result))
    (t_short, c_short, short), (t_long, c_long, long) = timed
    return {
        "load_seconds": load,
        "frames_short": short.frames,
        "frames": long.frames,
        "seconds_short": t_short,
        "seconds_total": t_long,
        "steady_s_per_frame": (t_long - t_short) / (long.frames - short.frames),
        "steady_cpu_s_per_frame": (c_long - c_short) / (long.frames - short.frames),
        "precision": getattr(upscaler, "precision", None),
        "stage_busy_s": dict(long.stage_busy_s),
        "batch_frames": upscaler.batch_frames,
        "tile": getattr(upscaler, "tile", None),
        "tile_pad": getattr(upscaler, "tile_pad", None),
        "model_used": long.model,
        **peak_memory(),
    }


def decode(src: str, count: int, crop: str | None = None) -> list[np.ndarray]:
    """The first ``count`` RGB frames, centre-cropped to ``crop`` ("WxH") if given."""
    with av.open(src) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    if crop:
        w, h = (int(v) for v in crop.split("x"))
        y, x = (frames[0].shape[0] - h) // 2, (frames[0].shape[1] - w) // 2
        frames = [np.ascontiguousarray(f[y : y + h, x : x + w]) for f in frames]
    return frames


def timed_calls(call: Any, warmup: int, count: int, per: int = 1) -> dict[str, Any]:
    """``warmup`` untimed calls, then ``count`` timed ones; wall and CPU seconds per frame of each."""
    walls, cpus = [], []
    for i in range(warmup + count):
        begin = clock()
        call()
        wall, cpu = since(begin)
        if i >= warmup:
            walls.append(wall / per)
            cpus.append(cpu / per)
    return {"s_per_frame": walls, "s_per_frame_min": min(walls), "cpu_s_per_frame": cpus,
            "cpu_s_per_frame_min": min(cpus)}


def run_engine(args: argparse.Namespace) -> dict[str, Any]:
    """``--warmup`` untimed calls, then ``--frames`` timed calls, each with one batch of ``batch_frames``."""
    from streamup.pipeline import build_upscaler

    start = time.perf_counter()
    upscaler = build_upscaler(options(args))
    load = time.perf_counter() - start
    batch = decode(args.src, upscaler.batch_frames, args.crop)
    batch += batch[-1:] * (upscaler.batch_frames - len(batch))  # a clip shorter than a batch: repeat a frame
    h, w = batch[0].shape[:2]
    return {
        "load_seconds": load,
        "width": w,
        "height": h,
        "batch_frames": len(batch),
        "tile": getattr(upscaler, "tile", None),
        "tile_pad": getattr(upscaler, "tile_pad", None),
        "precision": getattr(upscaler, "precision", None),
        "lanes": upscaler.lanes,
        **timed_calls(lambda: in_lanes(upscaler, batch), args.warmup, args.frames,
                      len(batch) * upscaler.lanes),
        **peak_memory(),
    }


def in_lanes(upscaler: Any, batch: list[np.ndarray]) -> None:
    """One batch per lane, all lanes at once, as the pipeline drives the engine (``FrameUpscaler.lanes``)."""
    if upscaler.lanes == 1:
        upscaler.upscale(batch)
        return
    threads = [threading.Thread(target=upscaler.upscale, args=(batch,)) for _ in range(upscaler.lanes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_network(args: argparse.Namespace) -> dict[str, Any]:
    import contextlib

    import spandrel
    import torch

    cuda = args.device == "gpu" and torch.cuda.is_available()
    precision = args.precision
    if precision == "auto":
        from streamup.engine import device

        precision = device.choose("gpu" if cuda else "cpu").precision
    dev = torch.device("cuda" if cuda else "cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    autocast = not cuda and precision == "bf16"  # as the engine: fp32 weights, bf16 autocast on a CPU
    weights_dtype = torch.float32 if autocast else dtype
    net = spandrel.ModelLoader().load_from_file(str(MODELS[args.model].weights)).model.eval()
    net = net.to(dev, weights_dtype).to(memory_format=torch.channels_last)
    frame = decode(args.src, 1, args.crop)[0]
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].to(dev, weights_dtype) / 255
    x = x.contiguous(memory_format=torch.channels_last)

    def forward() -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with ctx:
            net(x)
        if cuda:
            torch.cuda.synchronize()

    with torch.inference_mode():
        times = timed_calls(forward, args.warmup, args.frames)
    return {
        "width": frame.shape[1],
        "height": frame.shape[0],
        "precision": precision,
        **times,
        **peak_memory(),
    }


def run_pair(args: argparse.Namespace) -> dict[str, Any]:
    """The engine at x4 and x2 against its own bare network, alternating call by call in one process.

    The network is the engine's loaded module (same weights, precision, layout) run on the whole frame.
    Each round times network, engine x4, engine x2 (and x4 at ``--tiles``; an older engine with ``--before``;
    ``streamup.upscale`` on ``--src-short`` and ``--src`` with ``--src-short``: the pipeline's steady CPU-s
    per frame, all its threads) once, in rotated order; the per-round ratios cancel the slow drifts of a
    shared machine that separate processes minutes apart cannot.
    """
    import contextlib

    import torch

    from streamup.pipeline import build_upscaler

    opts = options(args)
    engines = {f"engine x{s}": build_upscaler(dataclasses.replace(opts, scale=s)) for s in (4, 2)}
    engine = engines["engine x4"]
    for tile in args.tiles or ():
        engines[f"engine x4 tile {tile}"] = build_upscaler(dataclasses.replace(opts, tile=tile))
    if args.before:  # an older streamup, renamed ``streamup_head`` (see benchmarks/overhead.py)
        sys.path.append(args.before)
        old_engine = importlib.import_module("streamup_head.engine")
        old_options = importlib.import_module("streamup_head.options")
        for s in (4, 2):
            engines[f"engine x{s} before"] = old_engine.build_upscaler(old_options.UpscaleOptions(
                scale=s, model=opts.model, device=opts.device, weights_dirs=opts.weights_dirs))
    frame = decode(args.src, 1, args.crop)[0]
    autocast = engine.placement.autocast  # type: ignore[attr-defined]
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255)
    x = x.contiguous(memory_format=torch.channels_last)
    net = engine.model.model  # type: ignore[attr-defined]

    def network() -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.inference_mode(), ctx:
            net(x)

    calls = {"network": network}
    calls.update({name: (lambda u=u: u.upscale([frame])) for name, u in engines.items()})
    pipeline_frames = {}
    if args.src_short:  # end to end: the long clip's run minus the short clip's, per extra frame
        from streamup import upscale

        out = Path(tempfile.mkdtemp(prefix="streamup-pair-"))
        for s in (4, 2):
            for label, src in (("short", args.src_short), ("long", args.src)):
                name = f"pipeline x{s} {label}"
                calls[name] = (lambda src=src, s=s, name=name: pipeline_frames.__setitem__(
                    name, upscale(src, str(out / "out.mkv"), dataclasses.replace(opts, scale=s)).frames))
    rounds: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i in range(args.warmup + args.frames):
        for name in names[i % len(names) :] + names[: i % len(names)]:  # rotate: no one always goes first
            begin = clock()
            calls[name]()
            if i >= args.warmup:
                rounds[name].append(since(begin)[1])
    for s in (4, 2) if args.src_short else ():
        extra = pipeline_frames[f"pipeline x{s} long"] - pipeline_frames[f"pipeline x{s} short"]
        long, short = rounds.pop(f"pipeline x{s} long"), rounds.pop(f"pipeline x{s} short")
        rounds[f"pipeline x{s}"] = [(a - b) / extra for a, b in zip(long, short, strict=True)]
    ratios = {name: [t / n for t, n in zip(times, rounds["network"], strict=True)]
              for name, times in rounds.items() if name != "network"}
    return {"width": frame.shape[1], "height": frame.shape[0], "precision": engine.precision,
            "tile": engine.tile, "cpu_s": rounds, "ratio_to_network": ratios}  # type: ignore[attr-defined]


def run_peak(args: argparse.Namespace) -> dict[str, Any]:
    """Best square-matmul GFLOP/s of ``--precision`` on the CPU, by process CPU time (n = 256..2048)."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.precision]
    best: dict[str, Any] = {"gflops": 0.0}
    for n in (256, 512, 1024, 2048):
        a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
        reps = max(2, int(2**30 // n**3))
        a @ b
        for _ in range(3):
            begin = clock()
            for _ in range(reps):
                a @ b
            wall, cpu = since(begin)
            gflops = 2 * n**3 * reps / max(cpu, 1e-9) / 1e9
            if gflops > best["gflops"]:
                best = {"gflops": gflops, "n": n, "wall_gflops": 2 * n**3 * reps / wall / 1e9}
    return {"dtype": args.precision, "threads": torch.get_num_threads(), **best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["pipeline", "engine", "network", "peak", "pair"])
    parser.add_argument("--src")
    parser.add_argument("--dst")
    parser.add_argument("--model", help="a key of benchmarks.common.MODELS or a model name")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--src-short", help="pipeline: the same footage, fewer frames (the baseline run)")
    parser.add_argument("--warmup-run", action="store_true", help="pipeline: one untimed run first")
    parser.add_argument("--frames", type=int, default=3, help="engine, network: timed calls after warm-up")
    parser.add_argument("--warmup", type=int, default=1, help="engine, network: untimed calls first")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--precision", default="auto", help="auto|fp32|bf16|fp16 (peak: fp32|bf16)")
    parser.add_argument("--tile", type=int, help="engine, pipeline: tile size (default: the engine's)")
    parser.add_argument("--lanes", type=int, help="engine, pipeline: inference lanes (default: the engine's)")
    parser.add_argument("--tiles", type=int, nargs="*", help="pair: also time the engine x4 at these tiles")
    parser.add_argument("--crop", help="engine, network: centre crop WxH of the decoded frames")
    parser.add_argument("--before", help="pair: a folder holding an older streamup renamed streamup_head")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    kinds = {"pipeline": run_pipeline, "engine": run_engine, "network": run_network, "peak": run_peak,
             "pair": run_pair}
    run = kinds[args.kind]
    if args.kind == "pipeline" and not (args.dst and args.src_short):
        parser.error("pipeline needs --dst and --src-short")
    Path(args.dst or ".").parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
