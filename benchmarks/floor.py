"""The compute floor: how fast could any implementation be on this machine, and how close is streamup?

  peak      best dense matmul throughput this machine reaches (fp32 and bf16 on the CPU, fp16 on a GPU):
            an upper bound for convolutions, which lower to the same GEMM kernels.
  FLOPs     each network's FLOPs per frame, counted by ``torch.utils.flop_counter.FlopCounterMode`` on a
            small input and scaled by pixel count: every layer is a convolution (or a pixel shuffle /
            interpolation, which FlopCounterMode counts as 0) whose cost is linear in the pixels, so
            FLOPs/pixel is a constant; the script counts at two sizes and checks that.
  floor     FLOPs per frame / peak = the time per frame no implementation can beat here.
  measured  streamup's model-only time (``build_upscaler(...).upscale``), the bare network's, and streamup's
            end-to-end pipeline time on the same clip, hence the ratio to the floor and what the pipeline
            around the model costs.

    .venv/bin/python -m benchmarks.floor [--quick] [--device cpu|gpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks import common

FRAME_SIZES = {"640x360": (640, 360), "960x540": (960, 540), "1920x1080": (1920, 1080), "480x270": (480, 270)}
# Measured clip per model (a centre crop of the 1080p footage scaled to 640x360) and timed calls: big enough
# that the network, not per-call overhead, dominates; small enough for x4plus on 2 cores (~2 s floor per
# 128x72 frame, and the engine takes 4 frames per call there).
CLIPS = {"x4plus": ((128, 72), 2), "animevideov3": ((640, 360), 4)}
QUICK_CLIPS = {"x4plus": ((64, 36), 1), "animevideov3": ((160, 90), 1)}
GPU_CLIPS = {"x4plus": ((640, 360), 4), "animevideov3": ((640, 360), 8)}  # a GPU idles on tiny crops
# Short and long clip: the steady s/frame is their difference over 12 frames (over 4 it swung +-20% run to
# run on a quiet machine: one frame's scheduling noise is a quarter of the estimate).
PIPELINE_FRAMES, QUICK_PIPELINE_FRAMES = (4, 16), (1, 2)
# Output scales measured per model (issue 10: animevideov3 at x2 and x4, x4plus at x4); the network always
# runs at x4, x2 adds the engine's lanczos resize and a quarter of the encoder's pixels.
SCALES = {"x4plus": (4,), "animevideov3": (4, 2)}


def matmul_peak(dtype_name: str, device: str, budget_s: float = 3.0) -> dict[str, Any]:
    """Best-of-N GFLOP/s of a square matmul, spending about ``budget_s``.

    The size is chosen from a 256 probe so that one product takes ~1/5 of the budget, capped at 2048 (CPU) /
    8192 (GPU): emulated dtypes (bf16 without AVX512-BF16/AMX) are hundreds of times slower than fp32.
    """
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    dev = torch.device("cuda" if device == "gpu" else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def best_of(n: int, seconds: float, min_reps: int) -> tuple[float, int]:
        a = torch.rand(n, n, device=dev).to(dtype)
        b = torch.rand(n, n, device=dev).to(dtype)
        best, reps, deadline = float("inf"), 0, time.perf_counter() + seconds
        while reps < min_reps or time.perf_counter() < deadline:
            t = time.perf_counter()
            a @ b
            sync()
            best = min(best, time.perf_counter() - t)
            reps += 1
        return best, reps

    probe, _ = best_of(256, 0.0, 3)
    rate = 2 * 256**3 / probe
    n_max = 8192 if dev.type == "cuda" else 2048
    n = int(min(n_max, max(256, (rate * budget_s / 5 / 2) ** (1 / 3))) // 256 * 256)
    best, reps = best_of(n, budget_s, 2)
    return {"dtype": dtype_name, "device": device, "n": n, "gflops": 2 * n**3 / best / 1e9, "reps": reps}


def count_flops(model: common.Model) -> dict[str, Any]:
    """FLOPs per input pixel, counted at two sizes to show it is a per-pixel constant."""
    import spandrel
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = spandrel.ModelLoader().load_from_file(str(model.weights)).model.eval()
    per_pixel = []
    for h, w in ((32, 32), (32, 64)):
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            net(torch.rand(1, 3, h, w))
        per_pixel.append(counter.get_total_flops() / (h * w))
    params = sum(p.numel() for p in net.parameters())
    return {
        "flops_per_input_pixel": per_pixel[0],
        "linear_in_pixels": abs(per_pixel[0] - per_pixel[1]) <= 1e-9 * per_pixel[0],
        "params": params,
        "network_scale": model.scale,
    }


def measured(
    model: common.Model, size: tuple[int, int], calls: int, quick: bool, device: str, tmp: Path,
    lanes: int | None = None,
) -> dict[str, Any]:
    """Bare-network s/frame, then model-only and end-to-end s/frame per output scale, on one clip, each in
    its own process."""
    clips = [
        common.make_clip(common.MEDIA / "bench_1920x1080_h264_aac.mp4", tmp / f"{model.key}-{n}.mp4",
                         size=(640, 360), crop=size, frames=n, loop=True)
        for n in (QUICK_PIPELINE_FRAMES if quick else PIPELINE_FRAMES)
    ]
    kw = {"model": model.key, "device": device}
    result: dict[str, Any] = {"network": common.measure("network", src=clips[0], scale=4, **kw, frames=calls)}
    for scale in SCALES[model.key]:
        engine = common.measure("engine", src=clips[0], scale=scale, **kw, frames=calls, lanes=lanes)
        pipe = common.measure("pipeline", src=clips[1], src_short=clips[0], dst=tmp / f"{model.key}-out.mkv",
                              scale=scale, **kw, warmup_run=device == "gpu", lanes=lanes)
        result[f"x{scale}"] = {"engine": engine, "pipeline": pipe}
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    machine = common.machine()
    gpu = args.device == "gpu"
    peaks = {"fp32": matmul_peak("fp32", args.device, 1.0 if args.quick else 3.0)}
    if gpu:
        peaks["fp16"] = matmul_peak("fp16", "gpu")
    else:
        peaks["bf16"] = matmul_peak("bf16", "cpu", 1.0 if args.quick else 3.0)
    bf16_fast = bool(machine["amx_bf16"] or machine["avx512_bf16"])
    # The precision streamup's engine runs here: fp16 on a GPU, bf16 on a CPU with native bf16, else fp32.
    precision = "fp16" if gpu else "bf16" if bf16_fast else "fp32"
    peak = peaks[precision]["gflops"] * 1e9
    clips = QUICK_CLIPS if args.quick else GPU_CLIPS if gpu else CLIPS
    models: dict[str, Any] = {}
    with common.scratch() as tmpdir:
        for key, model in common.MODELS.items():
            flops = count_flops(model)
            per_px = flops["flops_per_input_pixel"]
            entry: dict[str, Any] = {
                **flops,
                "flops_per_frame": {k: per_px * w * h for k, (w, h) in FRAME_SIZES.items()},
                "floor_s_per_frame": {k: per_px * w * h / peak for k, (w, h) in FRAME_SIZES.items()},
            }
            (w, h), calls = clips[key]
            tmp = Path(tmpdir)
            runs = [measured(model, (w, h), calls, args.quick, args.device, tmp, args.lanes)
                    for _ in range(args.repeats)]
            floor_clip = per_px * w * h / peak
            net = [r["network"]["s_per_frame_min"] for r in runs]
            entry["measured"] = {}
            for scale in SCALES[key]:
                eng = [r[f"x{scale}"]["engine"]["s_per_frame_min"] for r in runs]
                e2e = [r[f"x{scale}"]["pipeline"]["steady_s_per_frame"] for r in runs]
                entry["measured"][f"x{scale}"] = {
                    "clip": f"{w}x{h} centre crop of bench_1920x1080_h264_aac.mp4 scaled to 640x360 "
                    "(lanczos)",
                    "timed_calls": calls,
                    "lanes": runs[0][f"x{scale}"]["engine"].get("lanes", 1),
                    "floor_s_per_frame": floor_clip,
                    "network_s_per_frame": common.spread(net),
                    "engine_s_per_frame": common.spread(eng),
                    "pipeline_s_per_frame": common.spread(e2e),
                    "engine_vs_floor": min(eng) / floor_clip,
                    "network_vs_floor": min(net) / floor_clip,
                    "engine_vs_network": min(eng) / min(net),
                    "pipeline_vs_floor": min(e2e) / floor_clip,
                    "pipeline_vs_engine": min(e2e) / min(eng),
                    "pipeline_throughput_of_engine": min(eng) / min(e2e),
                }
            entry["runs"] = runs
            models[key] = entry
    return {
        "benchmark": "floor",
        "quick": args.quick,
        "device": args.device,
        "machine": machine,
        "peaks": peaks,
        "precision": precision,
        "models": models,
        "command": f".venv/bin/python -m benchmarks.floor --device {args.device}"
        + (" --quick" if args.quick else "") + f" --repeats {args.repeats}"
        + (f" --lanes {args.lanes}" if args.lanes else ""),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def markdown(result: dict[str, Any]) -> str:
    peaks = result["peaks"]
    lines = [
        f"## Compute floor ({common.machine_line(result['machine'])})",
        "",
        "Peak (best square matmul): "
        + ", ".join(f"{p['dtype']} {p['gflops']:.1f} GFLOP/s (n={p['n']})" for p in peaks.values())
        + f". streamup runs {result['precision']} here; the floor uses that peak.",
        "",
        "| model | FLOPs / input px | GFLOP / frame 640x360 | GFLOP / frame 1080p | floor 640x360 | "
        "floor 1080p |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, m in result["models"].items():
        f, fl = m["flops_per_frame"], m["floor_s_per_frame"]
        lines.append(
            f"| {key} | {m['flops_per_input_pixel'] / 1e6:.2f} MFLOP/px | {f['640x360'] / 1e9:,.0f} | "
            f"{f['1920x1080'] / 1e9:,.0f} | {common.fmt_seconds(fl['640x360'])} | "
            f"{common.fmt_seconds(fl['1920x1080'])} |"
        )
    lines += [
        "",
        "Measured on the clip (s/frame, min / median of runs; ratios from the min):",
        "",
        "| model | output | clip | lanes | floor | bare network | streamup engine (model only) | "
        "streamup end to end | engine / network | engine / floor | end to end / floor | "
        "end-to-end throughput / engine's |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def mm(d: dict[str, float]) -> str:
        return f"{d['min']:.3f} / {d['median']:.3f}"

    for key, m in result["models"].items():
        for scale, s in m["measured"].items():
            lines.append(
                f"| {key} | {scale} | {s['clip'].split()[0]} | {s['lanes']} | {s['floor_s_per_frame']:.3f} | "
                f"{mm(s['network_s_per_frame'])} | {mm(s['engine_s_per_frame'])} | "
                f"{mm(s['pipeline_s_per_frame'])} | {s['engine_vs_network']:.2f}x | "
                f"{s['engine_vs_floor']:.2f}x | {s['pipeline_vs_floor']:.2f}x | "
                f"{s['pipeline_throughput_of_engine']:.0%} |"
            )
    lines += ["", "The bare network is plain torch on the whole frame at torch's default threads (one "
              "call at a time); the engine and the pipeline run their lanes (`FrameUpscaler.lanes`: calls "
              "at once, each on cores / lanes threads)."]
    return common.markdown_with_command(lines, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny clips, one timed call: a smoke test")
    parser.add_argument("--repeats", type=int, default=2, help="runs per model (min/median reported)")
    parser.add_argument("--lanes", type=int, help="engine and pipeline lanes (default: the engine's own)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")
    parser.add_argument("--out", type=Path, help="result stem (default results/floor-DEVICE[-quick])")
    args = parser.parse_args()
    common.require_device(parser, args.device)
    result = run(args)
    stem = args.out or common.RESULTS / (f"floor-{args.device}" + ("-quick" if args.quick else ""))
    text = markdown(result)
    common.save_result(stem, result, text, show=json.dumps(result, indent=2) if args.json else None)


if __name__ == "__main__":
    main()
