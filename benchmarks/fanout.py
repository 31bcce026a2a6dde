"""What fanning a job out costs: CPU-seconds of a fanned-out job against the same job in one run, the
per-segment overhead, and from those the wall time of a 5-minute 1080p job on the seed's fleets.

    .venv/bin/python -m benchmarks.fanout [--seconds 60] [--segment-seconds 10] [--model lanczos]

The source is a shared clip looped to ``--seconds`` with ``ffmpeg -stream_loop`` (stream copy: the real
bitstream, keyframes every ~2 s). Both runs share one prebuilt upscaler, so the model load (once per worker
process, not per segment) is measured apart. CPU-seconds are ``getrusage`` user + system of this process
(every thread), per phase: the single run; the plan; each segment; the stitch. Every frame is upscaled
exactly once either way (cuts fall on keyframes, so no frame is upscaled twice), so the difference is the
fixed cost of a segment (open and seek the source, start and flush an encoder, read its header back, write
its record) plus the plan and the stitch, the same for any model. With ``--model lanczos`` that overhead is
measured against the smallest possible job, which makes the ratio its worst case; the ratio for a real
model follows from its per-frame cost (``benchmarks/results/tiers-cpu-before-epyc-avx2.json``, the only
tier table with every model), which is what the fleet table does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from benchmarks.common import machine, machine_line
from streamup.fanout.inprocess import open_plan
from streamup.fanout.segment import run_segment
from streamup.fanout.stitch import stitch
from streamup.observe import JobRef
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler, upscale

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SOURCE = REPO.parent / "shared" / "media" / "main_h264_aac_640x360.mp4"
#: The seed's fleets: CPU workers scale 1-10, GPU workers 0-5.
FLEETS = {"cpu": 10, "gpu": 5}
#: The measured tier table the fleet projection divides (the one holding every model and reading).
TIERS = RESULTS / "tiers-cpu-before-epyc-avx2.json"


@dataclass
class Clock:
    """CPU-seconds (user + system, all threads) and wall seconds of one phase."""

    cpu: float = 0.0
    wall: float = 0.0

    def __enter__(self) -> Clock:
        self._cpu0, self._wall0 = _cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = _cpu() - self._cpu0
        self.wall = time.perf_counter() - self._wall0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loop_clip(source: Path, seconds: int, folder: Path) -> Path:
    out = folder / f"loop{seconds}.mp4"
    loops = math.ceil(seconds / 5) - 1  # the shared clip lasts 5 s
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", str(loops),
                    "-i", str(source), "-t", str(seconds), "-c", "copy", str(out)], check=True)
    return out


def single_run(source: Path, out: Path, options: UpscaleOptions, upscaler: Any) -> tuple[Clock, int]:
    with Clock() as clock:
        result = upscale(str(source), str(out), options, upscaler=upscaler)
    return clock, result.frames


def fanned_run(source: Path, out: Path, options: UpscaleOptions, upscaler: Any,
               segment_seconds: Fraction) -> dict[str, Any]:
    """The fleet's steps one after another, each phase clocked (a segment is what one worker runs)."""
    job = JobRef("bench", "none", upscaler.device)
    with Clock() as planning:
        plan, area, _ = open_plan(str(source), str(out), options, segment_seconds)
    segments = []
    for segment in plan.segments:
        with Clock() as clock:
            run_segment(plan, area, segment.index, options, job=job, upscaler=upscaler)
        segments.append({"index": segment.index, "frames": segment.frames, "cpu_s": clock.cpu,
                         "wall_s": clock.wall})
    with Clock() as stitching:
        stitched = stitch(plan, area)
    area.remove()
    segment_cpu = sum(s["cpu_s"] for s in segments)
    return {"segment_seconds": float(segment_seconds), "segment_count": len(segments), "segments": segments,
            "plan": {"cpu_s": planning.cpu, "wall_s": planning.wall},
            "stitch": {"cpu_s": stitching.cpu, "wall_s": stitching.wall, "frames": stitched.frames},
            "segments_cpu_s": segment_cpu, "cpu_s": planning.cpu + segment_cpu + stitching.cpu}


def measure(source: Path, folder: Path, options: UpscaleOptions, segment_seconds: Fraction) -> dict[str, Any]:
    """Single, fanned at ``segment_seconds``, fanned at every keyframe (the most segments the source
    allows: the overhead per segment stands out of the noise), single again; the two single runs show the
    noise of this machine."""
    with Clock() as load:
        upscaler = build_upscaler(options)
    first, frames = single_run(source, folder / "single-a.mp4", options, upscaler)
    fanned = fanned_run(source, folder / "fanned.mp4", options, upscaler, segment_seconds)
    finest = fanned_run(source, folder / "finest.mp4", options, upscaler, Fraction(1, 1000))
    second, _ = single_run(source, folder / "single-b.mp4", options, upscaler)
    single_cpu = (first.cpu + second.cpu) / 2
    return {
        "frames": frames,
        "model_load": {"cpu_s": load.cpu, "wall_s": load.wall},
        "single_runs": [{"cpu_s": c.cpu, "wall_s": c.wall} for c in (first, second)],
        "single_cpu_s": single_cpu,
        "single_noise_cpu_s": abs(first.cpu - second.cpu),
        "fanned": fanned,
        "finest": finest,
        "ratio": fanned["cpu_s"] / single_cpu,
        "single_cpu_s_per_frame": single_cpu / frames,
        # what a segment costs beyond its frames' share of the single run, from the run with the most
        # segments (plan and stitch counted apart)
        "per_segment_overhead_cpu_s": (finest["segments_cpu_s"] - single_cpu) / finest["segment_count"],
        "plan": fanned["plan"], "stitch": fanned["stitch"], "segment_count": fanned["segment_count"],
    }


def fleet_table(m: dict[str, Any], segment_seconds: float, fps: int = 30, length_s: int = 300) -> list[dict]:
    """A 5-minute 1080p job on the seed's fleets, per tier/model/reading of the measured tier table: the
    single-worker time, the fan-out's wall = plan + waves x (segment compute + measured per-segment
    overhead) + stitch (plan and stitch scaled from the measured clip by frame count). The segment compute
    is the single-worker time's own rate (its seconds / frames), so both columns rest on one per-frame
    figure and their ratio is the fleet's alone."""
    tiers = json.loads(TIERS.read_text())
    frames = fps * length_s
    n = math.ceil(length_s / segment_seconds)
    scale_io = frames / m["frames"]
    plan_s, stitch_s = m["plan"]["wall_s"] * scale_io, m["stitch"]["wall_s"] * scale_io
    rows = []
    for cell in tiers["cells"]:
        if cell["length_s"] != length_s or cell["model"] == "lanczos":
            continue
        tier_device = "gpu" if cell["tier"] in ("premium", "pro") else "cpu"
        workers = FLEETS[tier_device]
        per_frame = cell["seconds"] / frames if cell["seconds"] is not None else None
        row = {"model": cell["model"], "tier": cell["tier"], "reading": cell["reading"], "workers": workers,
               "claimed_s": cell["claimed_seconds"], "single_worker_s": cell["seconds"], "fleet_s": None}
        if per_frame is not None and tier_device == "cpu":
            waves = math.ceil(n / workers)
            segment_s = per_frame * frames / n + max(0.0, m["per_segment_overhead_cpu_s"])
            row["fleet_s"] = plan_s + waves * segment_s + stitch_s
        rows.append(row)
    return rows


def overhead_fit(segments: list[dict[str, Any]]) -> tuple[float, float]:
    """Least squares of a segment's CPU-s against its frame count: (CPU-s per segment, CPU-s per frame).
    The intercept is the fixed cost of a segment, measured across segments of different lengths, so it does
    not lean on the single run (whose CPU-s drift by several percent on a shared machine)."""
    xs = [s["frames"] for s in segments]
    ys = [s["cpu_s"] for s in segments]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def markdown(m: dict[str, Any]) -> str:
    """The result as the tables docs/fanout.md quotes."""
    f, fine = m["fanned"], m["finest"]
    fit = overhead_fit(fine["segments"])
    runs = ", ".join(f"{r['cpu_s']:.1f}" for r in m["single_runs"])
    lines = [
        f"Measured on {m['machine_line']} (load average {m['load_average'][0]:.1f} while it ran: the machine "
        f"was shared). Source: {m['source']}, {m['frames']} frames; model {m['model']}, x{m['scale']}.",
        "",
        "| run | segments | CPU-s | x single |",
        "| --- | --- | --- | --- |",
        f"| single (two runs: {runs}) | 1 | {m['single_cpu_s']:.1f} | 1.00 |",
        f"| fanned, {f['segment_seconds']:g} s segments (plan + segments + stitch) | {f['segment_count']} | "
        f"{f['cpu_s']:.1f} | {m['ratio']:.3f} |",
        f"| fanned, a segment per keyframe | {fine['segment_count']} | {fine['cpu_s']:.1f} | "
        f"{fine['cpu_s'] / m['single_cpu_s']:.3f} |",
        "",
        f"Per-segment overhead: {m['per_segment_overhead_cpu_s']:+.2f} CPU-s against the mean single run "
        f"(the two single runs differ by {m['single_noise_cpu_s']:.2f} CPU-s); fitted across the "
        f"{fine['segment_count']} keyframe segments (CPU-s = a + b x frames): a = {fit[0]:+.2f} CPU-s per "
        f"segment, b = {fit[1]:.4f} CPU-s per frame (single run: {m['single_cpu_s_per_frame']:.4f}). "
        f"Plan {f['plan']['cpu_s']:.2f} CPU-s ({f['plan']['wall_s']:.2f} s), "
        f"stitch {f['stitch']['cpu_s']:.2f} CPU-s ({f['stitch']['wall_s']:.2f} s); "
        f"model load, once per worker process: {m['model_load']['cpu_s']:.1f} CPU-s.",
        "",
        "5-minute 30 fps job, 1080p, on the seed's fleets (10 CPU / 5 GPU workers), projected from the "
        f"single-worker time of {TIERS.name} (the machine that file names; both columns at its per-frame "
        f"rate), {m['segment_seconds']:g} s segments:",
        "",
        "| model | 1080p is | tier | one worker | fleet (fanned out) | seed's claim |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in m["fleet_5min"]:
        fleet = _duration(r["fleet_s"]) if r["fleet_s"] is not None else "not measured (no GPU)"
        one = _duration(r["single_worker_s"]) if r["single_worker_s"] is not None else "not measured"
        lines.append(f"| {r['model']} | {r['reading']} | {r['tier']} | {one} | {fleet} ({r['workers']} "
                     f"workers) | {_duration(r['claimed_s'])} |")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, default=SOURCE)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--segment-seconds", type=float, default=10)
    p.add_argument("--model", default="lanczos")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--json", type=Path, default=RESULTS / "fanout.json")
    p.add_argument("--report", action="store_true",
                   help="measure nothing: recompute the fleet table of the saved --json, rewrite both")
    args = p.parse_args()
    if args.report:  # the saved measurement, with the fleet projection recomputed from today's TIERS
        m = json.loads(args.json.read_text())
        m["fleet_5min"] = fleet_table(m, m["segment_seconds"])
        args.json.write_text(json.dumps(m, indent=1))
        args.json.with_suffix(".md").write_text(markdown(m))
        return
    options = UpscaleOptions(model=args.model, scale=args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = loop_clip(args.source, args.seconds, folder)
        m = measure(clip, folder, options, Fraction(str(args.segment_seconds)))
    m.update({
        "benchmark": "fanout", "machine": machine(), "machine_line": machine_line(machine()),
        "load_average": os.getloadavg(),
        "source": f"{args.source.name} looped to {args.seconds} s (ffmpeg -stream_loop, stream copy)",
        "model": args.model, "scale": args.scale, "segment_seconds": args.segment_seconds,
        "fleet_5min": fleet_table(m, args.segment_seconds),
        "command": f".venv/bin/python -m benchmarks.fanout --seconds {args.seconds} "
                   f"--segment-seconds {args.segment_seconds:g} --model {args.model}",
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(m, indent=1))
    args.json.with_suffix(".md").write_text(markdown(m))
    print(json.dumps({k: m[k] for k in ("frames", "segment_count", "ratio", "per_segment_overhead_cpu_s",
                                        "single_runs", "plan", "stitch", "model_load")}, indent=1))


if __name__ == "__main__":
    main()
