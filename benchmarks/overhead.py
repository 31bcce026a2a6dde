"""Per-core cost of each layer, by CPU time: matmul floor, bare network, engine, pipeline; before and after.

On a CPU shared with other jobs wall time measures the neighbours, so this benchmark measures *work*: process
CPU time with torch on one thread (no OpenMP spinning), every variant timed once per round in one process
(``benchmarks.measure pair``: rotated order, paired ratios), median of the rounds, with the load average
recorded. Per frame, on one core:

  floor     network FLOPs (``floor.count_flops``) / best 1-thread matmul GFLOP/s in the engine's precision
  network   bare network, whole frame, the engine's precision and layout
  engine    ``build_upscaler(options).upscale`` at x4 and x2 (tiles, conversions, the x4->x2 resize)
  before    the same calls on an older streamup (``--before DIR``: DIR holds it renamed ``streamup_head``)
  pipeline  ``streamup.upscale`` end to end (decode, colour, engine, encode; CPU of all its threads), steady
            state: a 3-frame clip's run minus a 1-frame clip's, per extra frame

On an idle 2-core machine with the stages overlapped, wall time per frame is at best CPU time / 2; pipeline
CPU / engine CPU is then the best case of end-to-end throughput against the engine alone.

    git archive HEAD streamup | tar -x -C /tmp/old && mv /tmp/old/streamup /tmp/old/streamup_head && \\
      sed -i -E 's/\\bstreamup\\./streamup_head./g; s/from streamup import/from streamup_head import/' \\
      $(grep -rl streamup /tmp/old/streamup_head --include=*.py)   # then copy engine/data/ in, dereferenced
    .venv/bin/python -m benchmarks.overhead [--rounds 3] [--before /tmp/old] [--models animevideov3 x4plus]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import common, floor

# Input per model: animevideov3 on whole 640x360 frames; x4plus (36 MFLOP/px: ~43 CPU-s per 640x360 frame
# at bf16 peak) on a 160x90 centre crop, its times multiplied by 16 (cost is linear in pixels: floor.py).
CLIPS = {"animevideov3": (640, 360), "x4plus": (160, 90)}
QUICK_CLIPS = {"animevideov3": (64, 36), "x4plus": (32, 18)}
PIPELINE_FRAMES = (1, 3)  # short and long clip


def run(args: argparse.Namespace) -> dict[str, Any]:
    peaks = {p: common.measure("peak", precision=p, threads=1) for p in ("fp32", "bf16")}
    machine = common.machine()
    engine = machine["streamup_engine"]
    precision = engine["auto_precision"] if isinstance(engine, dict) else "fp32"
    models: dict[str, Any] = {}
    with common.scratch() as tmpdir:
        tmp = Path(tmpdir)
        for key in args.models:
            w, h = (QUICK_CLIPS if args.quick else CLIPS)[key]
            short, long = (
                common.make_clip(common.MEDIA / "bench_1920x1080_h264_aac.mp4", tmp / f"{key}-{n}.mp4",
                                 size=(640, 360), crop=(w, h), frames=n, loop=True)
                for n in PIPELINE_FRAMES)
            load_before = os.getloadavg()[0]
            pair = common.measure("pair", model=key, threads=1, frames=args.rounds, warmup=1, src=long,
                                  src_short=short, before=args.before)
            flops = floor.count_flops(common.MODELS[key])["flops_per_input_pixel"] * w * h
            models[key] = {
                "clip": f"{w}x{h}", "pixels_scale_to_640x360": 640 * 360 / (w * h),
                "gflop_per_frame": flops / 1e9,
                "floor_cpu_s": {p: flops / (peaks[p]["gflops"] * 1e9) for p in peaks},
                "median_cpu_s_per_frame": {k: statistics.median(v) for k, v in pair["cpu_s"].items()},
                "median_ratio_to_network": {
                    k: statistics.median(v) for k, v in pair["ratio_to_network"].items()},
                "load_avg_1m": (load_before, os.getloadavg()[0]), "pair": pair,
            }
            print(key, models[key]["median_cpu_s_per_frame"], flush=True)
    return {
        "benchmark": "overhead",
        "machine": machine,
        "peaks_1_thread": peaks,
        "precision": precision,
        "models": models,
        "before": args.before,
        "command": f".venv/bin/python -m benchmarks.overhead --rounds {args.rounds} --models "
        + " ".join(args.models) + (" --before DIR" if args.before else "")
        + (" --quick" if args.quick else ""),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def markdown(result: dict[str, Any]) -> str:
    peaks, prec = result["peaks_1_thread"], result["precision"]
    lines = [
        f"## Per-core cost by layer ({common.machine_line(result['machine'])})",
        "",
        "Best 1-thread matmul (CPU time): " + ", ".join(
            f"{p} {v['gflops']:.0f} GFLOP/s (n={v['n']})" for p, v in peaks.items())
        + f". The engine's automatic precision here: **{prec}**. CPU-seconds per frame (1 torch thread), "
        "median of the rounds, scaled to a 640x360 input where the clip is a crop; x floor = against the "
        f"floor of the precision in use ({prec}); x network = median of the per-round ratios.",
        "",
        "| model | variant | CPU-s / 640x360 frame | x floor | x network (paired) | load avg (1 min) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, m in result["models"].items():
        k = m["pixels_scale_to_640x360"]
        fl = m["floor_cpu_s"][prec] * k
        gflop = m["gflop_per_frame"] * k
        load = "{:.1f}-{:.1f}".format(*m["load_avg_1m"])
        lines.append(f"| {key} | floor ({prec}, {gflop:,.0f} GFLOP) | {fl:.2f} | 1.00x | | |")
        for name, value in m["median_cpu_s_per_frame"].items():
            ratio = m["median_ratio_to_network"].get(name)
            lines.append(f"| {key} | {name} | {value * k:.2f} | {value * k / fl:.2f}x | "
                         + (f"{ratio:.2f}x" if ratio else "1.00x") + f" | {load} |")
    clips = ", ".join(f"{k} {m['clip']}" for k, m in result["models"].items())
    lines += ["", f"Clips: {clips} centre crops of bench_1920x1080_h264_aac.mp4 scaled to 640x360; "
              "pipeline = mkv output at the default encoder settings (libx264 crf 18 preset medium). "
              f"Command: `{result['command']}` (finished {result['finished_utc']})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=list(CLIPS), default=list(CLIPS))
    parser.add_argument("--before", help="a folder holding an older streamup renamed streamup_head")
    parser.add_argument("--quick", action="store_true", help="tiny crops: a smoke test")
    parser.add_argument("--out", type=Path, help="result stem (default results/overhead-cpu[-quick])")
    args = parser.parse_args()
    result = run(args)
    stem = args.out or common.RESULTS / ("overhead-cpu" + ("-quick" if args.quick else ""))
    common.save_result(stem, result, markdown(result))


if __name__ == "__main__":
    main()
