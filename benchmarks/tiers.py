"""The seed's tier timing table, measured on this machine, per model and per reading of "1080p".

The seed claims, for 1920x1080 30 fps video on t3.xlarge (CPU, $0.17/h) and g4dn.xlarge (GPU, $0.53/h)
with RealESRGAN_x4plus, 4/8 min (CPU 2x/4x) and 25/50 s (GPU 2x/4x) per 10 s of video, about linear in
length. This script runs the real pipeline (``streamup.upscale``: decode, engine, encode, real files) on
real footage (``bench_1920x1080_h264_aac.mp4``, brought to each input size with
``ffmpeg -vf scale=W:H:flags=lanczos``) for every tier, model and reading:

  reading "input"   the input is 1920x1080 (output 3840x2160 at 2x, 7680x4320 at 4x)
  reading "output"  the output is 1920x1080 (input 960x540 at 2x, 480x270 at 4x)

``lanczos`` (streamup's no-network preview) runs the same cells: the pipeline's own cost (decode, resize,
encode of 4K/8K output), which no model can go below.

Each measurement is a fresh process that loads the network, then runs the pipeline on a short and a long
clip of the same footage: steady-state seconds per frame = time difference / frame difference, so decode,
model and encode (flush included) of the extra frames count and once-per-run costs cancel. Where a full frame
takes too long here (x4plus on a CPU: minutes per 1080p frame) the clip is a centre crop of the scaled
footage and the time is scaled by the pixels the engine actually runs (its tile windows, padding included):
conv cost is linear in pixels (see floor.py). A row is ``extrapolated`` unless that length was run end to
end at full size (``--end-to-end-budget``); the 60 s and 300 s rows are s/frame x frames. Costs are this
machine's time priced at the seed's instance prices, not the instance's own speed.

``--held 2`` (or 3) runs every cell on animation on twos (threes) made from the same footage (see
``common.make_clip``), the case the default anime model is for: with reuse on (the default), a held
picture's repeats skip the network (``benchmarks/reuse.py`` measures that against ``--reuse off``).

    .venv/bin/python -m benchmarks.tiers [--quick] [--device cpu|gpu] [--json] [--repeats N] [--held N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import common

FPS = 30  # the seed's table is for 30 fps video
LENGTHS = (10, 60, 300)
READINGS = ("input", "output")
FULL = (1920, 1080)
SOURCE = common.MEDIA / "bench_1920x1080_h264_aac.mp4"
# The pipeline with no network (streamup's lanczos preview): the part of every cell that is not the model.
MODELS = {**common.MODELS, "lanczos": common.Model("lanczos", "lanczos", 1)}


@dataclass(frozen=True)
class Tier:
    name: str
    device: str
    scale: int
    instance: str
    usd_per_hour: float


TIERS = {
    t.name: t
    for t in (
        Tier("basic", "cpu", 2, "t3.xlarge", 0.17),
        Tier("standard", "cpu", 4, "t3.xlarge", 0.17),
        Tier("premium", "gpu", 2, "g4dn.xlarge", 0.53),
        Tier("pro", "gpu", 4, "g4dn.xlarge", 0.53),
    )
}
# The seed's rows as written (they are not exactly linear: its 1 min row is 6.25x its 10 s row).
CLAIMED = {
    "basic": {10: 240, 60: 1500, 300: 7500},
    "standard": {10: 480, 60: 3000, 300: 15000},
    "premium": {10: 25, 60: 150, 300: 750},
    "pro": {10: 50, 60: 300, 300: 1500},
}
CLAIMED_MEMORY = {"cpu": "3-6 GB RAM", "gpu": "2-5 GB VRAM"}
# Vendor-spec peaks of the seed's instances (not measured here), for "could any implementation meet the claim
# there?": t3.xlarge = 4 vCPU = 2 physical Xeon Platinum 8175M/8259CL cores, AVX-512 with 2 FMA units
# (64 fp32 FLOP/cycle) at <= 3.1 GHz all-core turbo -> <= 0.40 TFLOP/s fp32 (and a 40 % CPU-credit baseline);
# g4dn.xlarge = one NVIDIA T4, 65 TFLOP/s fp16 on tensor cores.
SEED_PEAK_FLOPS = {"cpu": 2 * 64 * 3.1e9, "gpu": 65e12}

# (largest measured input, short clip frames, long clip frames) per model: steady s/frame is the time
# difference of the two runs over their frame difference (benchmarks/measure.py). On a CPU a bigger input is
# measured on a centre crop of that size; the engine there takes frames 4 at a time, so the clips are one
# and two batches. animevideov3 (~1.2 MFLOP/px) runs 640x360 in seconds; x4plus (~36 MFLOP/px) needs ~2 s
# of pure compute per 128x72 frame on 2 AVX2 cores. lanczos (no network) runs whole frames: what decode,
# resize and encode (4K/8K x264 at 1080p input) cost on their own.
CPU_PLAN = {"animevideov3": ((640, 360), 4, 8), "x4plus": ((128, 72), 4, 8), "lanczos": (None, 2, 6)}
CPU_QUICK = {"animevideov3": ((160, 90), 1, 2), "x4plus": ((64, 36), 1, 2), "lanczos": (None, 1, 2)}
# A GPU runs every input whole, over more frames, after an untimed run (cuDNN picks its kernels).
GPU_PLAN = {"animevideov3": (None, 16, 48), "x4plus": (None, 8, 24), "lanczos": (None, 4, 12)}
GPU_QUICK = {"animevideov3": (None, 4, 12), "x4plus": (None, 4, 8), "lanczos": (None, 2, 4)}
# lanczos is measured once whatever --repeats says: it is x264 at 4K/8K, the costliest runs of all here.
REPEAT_CAP = {"lanczos": 1}


@dataclass(frozen=True)
class Unit:
    """One thing to time: a model at one scale on one input size (shared by the three length rows)."""

    model: common.Model
    scale: int
    reading: str
    device: str

    @property
    def key(self) -> str:
        return f"{self.model.key}/x{self.scale}/{self.reading}/{self.device}"

    @property
    def input_size(self) -> tuple[int, int]:
        return FULL if self.reading == "input" else (FULL[0] // self.scale, FULL[1] // self.scale)


def window_pixels(width: int, height: int, tile: int, pad: int) -> int:
    """Input pixels the network runs for one frame: the tile windows (the official grid), padding included."""
    if tile <= 0 or (width <= tile and height <= tile):
        return width * height

    def spans(size: int) -> int:
        return sum(min(s + tile + pad, size) - max(s - pad, 0) for s in range(0, size, tile))

    return spans(width) * spans(height)


def measure_unit(unit: Unit, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    gpu = unit.device == "gpu"
    plan = (GPU_QUICK if args.quick else GPU_PLAN) if gpu else (CPU_QUICK if args.quick else CPU_PLAN)
    limit, short, frames = plan[unit.model.key]
    w, h = unit.input_size
    crop = None
    if limit and (w > limit[0] or h > limit[1]):
        crop = (min(w, limit[0]), min(h, limit[1]))
    mw, mh = crop or (w, h)
    name = f"{unit.model.key}-x{unit.scale}-{unit.reading}"
    clips = {
        n: common.make_clip(SOURCE, tmp / f"{name}-{n}.mp4", size=(w, h), crop=crop, frames=n, loop=True,
                            held=args.held)
        for n in (short, frames)
    }
    repeats = min(args.repeats, REPEAT_CAP.get(unit.model.key, args.repeats))
    runs = [
        common.measure("pipeline", src=clips[frames], src_short=clips[short], dst=tmp / f"{name}-out.mkv",
                       model=unit.model.key, scale=unit.scale, device=unit.device, warmup_run=gpu)
        for _ in range(repeats)
    ]
    tile, pad = runs[0]["tile"] or 0, runs[0]["tile_pad"] or 0
    factor = window_pixels(w, h, tile, pad) / window_pixels(mw, mh, tile, pad)
    per_frame = [r["steady_s_per_frame"] * factor for r in runs]
    result: dict[str, Any] = {
        "input": f"{w}x{h}",
        "measured_input": f"{mw}x{mh}" + (f" (centre crop of the {w}x{h} footage)" if crop else ""),
        "engine_tile": tile,
        "engine_tile_pad": pad,
        "pixel_factor": factor,
        "frames_short": short,
        "frames": frames,
        "batch_frames": runs[0]["batch_frames"],
        "s_per_frame": common.spread(per_frame),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
        "peak_vram_bytes": max((r["peak_vram_bytes"] or 0) for r in runs) or None,
        "memory_measured_at": f"{mw}x{mh} input",
        "runs": runs,
    }
    predicted_10s = statistics.median(per_frame) * FPS * 10
    if not crop and predicted_10s <= args.end_to_end_budget:
        long_clip = common.make_clip(SOURCE, tmp / f"{name}-10s.mp4", size=(w, h), frames=FPS * 10, loop=True,
                                     fps=FPS, held=args.held)
        result["end_to_end_10s"] = common.measure(
            "pipeline", src=long_clip, src_short=clips[short], dst=tmp / f"{name}-10s-out.mkv",
            model=unit.model.key, scale=unit.scale, device=unit.device, warmup_run=gpu,
        )
    return result


def estimate(measured: dict[str, Any], length: int) -> tuple[float, bool, str]:
    """(seconds, extrapolated, how) for a clip of ``length`` s from one unit's measurements."""
    e2e = measured.get("end_to_end_10s")
    if e2e and length == 10:
        return e2e["load_seconds"] + e2e["seconds_total"], False, "end to end, full size, 300 frames"
    if e2e:
        rate = e2e["steady_s_per_frame"]
        return rate * FPS * length, True, "the 10 s end-to-end run's steady s/frame x frames"
    how = "steady-state s/frame x frames"
    if measured["pixel_factor"] != 1:
        how += f", scaled from {measured['measured_input']} by pixels x{measured['pixel_factor']:.1f}"
    return measured["s_per_frame"]["median"] * FPS * length, True, how


def compute_bounds(flops_per_frame: float, frames: int, claimed: float, device: str,
                   peak_here: float | None) -> dict[str, Any]:
    """What the FLOP count alone says about a cell: the sustained rate the claim needs, against the seed
    instance's spec peak, and the floor time on this machine (FLOPs / measured matmul peak)."""
    if not flops_per_frame:
        return {"flops_per_frame": 0.0}
    need = flops_per_frame * frames / claimed
    return {
        "flops_per_frame": flops_per_frame,
        "claim_needs_tflops": need / 1e12,
        "claim_over_seed_instance_peak": need / SEED_PEAK_FLOPS[device],
        "floor_seconds_this_machine": flops_per_frame * frames / peak_here if peak_here else None,
    }


def cells_for(
    unit: Unit,
    measured: dict[str, Any] | None,
    reason: str | None,
    flops_per_px: float,
    peak_here: float | None,
) -> list[dict[str, Any]]:
    tiers = [t for t in TIERS.values() if t.device == unit.device and t.scale == unit.scale]
    out = []
    for tier in tiers:
        for length in LENGTHS:
            frames = FPS * length
            claimed = CLAIMED[tier.name][length]
            cell: dict[str, Any] = {
                "tier": tier.name,
                "length_s": length,
                "reading": unit.reading,
                "model": unit.model.name,
                "device": unit.device,
                "scale": unit.scale,
                "input": f"{unit.input_size[0]}x{unit.input_size[1]}",
                "frames": frames,
                "claimed_seconds": claimed,
                "instance": tier.instance,
                "usd_per_hour": tier.usd_per_hour,
                "claimed_usd_per_video_minute": CLAIMED[tier.name][60] / 3600 * tier.usd_per_hour,
                **compute_bounds(flops_per_px * unit.input_size[0] * unit.input_size[1], frames, claimed,
                                 unit.device, peak_here),
            }
            if measured is None:
                cell.update(seconds=None, extrapolated=False, ratio=None, peak_rss_bytes=None,
                            peak_vram_bytes=None, note=reason)
                out.append(cell)
                continue
            seconds, extrapolated, method = estimate(measured, length)
            e2e = measured.get("end_to_end_10s")
            where = measured["memory_measured_at"] + (", and 300 frames end to end" if e2e else "")
            cell.update(
                seconds=seconds,
                extrapolated=extrapolated,
                method=method,
                s_per_frame=measured["s_per_frame"],
                ratio=seconds / claimed,
                peak_rss_bytes=max(measured["peak_rss_bytes"], e2e["peak_rss_bytes"] if e2e else 0),
                peak_vram_bytes=max(measured["peak_vram_bytes"] or 0, (e2e or {}).get("peak_vram_bytes") or 0)
                or None,
                memory_measured_at=where,
                usd_per_video_minute_this_machine_time=seconds / length * 60 / 3600 * tier.usd_per_hour,
            )
            out.append(cell)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks import floor

    machine = common.machine()
    have_gpu = bool(machine["gpu"])
    # The floor in this run's own conditions: fp32 on this CPU (no native bf16 here), fp16 on a GPU.
    peaks = {"cpu": floor.matmul_peak("fp32", "cpu")}
    if have_gpu:
        peaks["gpu"] = floor.matmul_peak("fp16", "gpu")
    flops = {k: floor.count_flops(m)["flops_per_input_pixel"] for k, m in common.MODELS.items()}
    units_out: dict[str, Any] = {}
    with common.scratch() as tmpdir:
        for unit in units(args.models):
            if unit.device == args.device:
                measured = measure_unit(unit, args, Path(tmpdir))
                units_out[unit.key] = measured
                print(f"# {unit.key}: {measured['s_per_frame']['median']:.3f} s/frame (median)", flush=True)
    result = {
        "benchmark": "tiers",
        "quick": args.quick,
        "device": args.device,
        "repeats": args.repeats,
        "models": args.models,
        "machine": machine,
        "machine_line": common.machine_line(machine),
        "fps": FPS,
        "held": args.held,
        "source": f"{SOURCE.name} scaled with ffmpeg -vf scale=W:H:flags=lanczos (then crop=W:H centred "
        "where marked), " + ("written lossless (x264 -qp 0)" if args.held == 1 else
                             f"held on {args.held}s (framestep={args.held},fps=24), x264 crf 20"),
        "claimed_memory": CLAIMED_MEMORY,
        "matmul_peaks": peaks,
        "flops_per_input_pixel": flops,
        "seed_instance_peak_flops": SEED_PEAK_FLOPS,
        "cost_note": "usd_per_video_minute_this_machine_time prices THIS machine's time at the seed's "
        "instance price; it is not what the instance would cost",
        "units": units_out,
        "command": f".venv/bin/python -m benchmarks.tiers --device {args.device} --repeats {args.repeats}"
        + (f" --models {' '.join(args.models)}" if args.models != list(MODELS) else "")
        + (" --quick" if args.quick else "")
        + (f" --end-to-end-budget {args.end_to_end_budget:g}" if args.end_to_end_budget else "")
        + (f" --held {args.held}" if args.held > 1 else ""),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    result["cells"] = cells(result)
    return result


def units(models: list[str]) -> list[Unit]:
    return [Unit(MODELS[key], scale, reading, d) for key in models for reading in READINGS
            for d in ("cpu", "gpu") for scale in (2, 4)]


def cells(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's cells from a result's measured units (also how ``--rerender`` rebuilds them)."""
    have_gpu = bool(result["machine"]["gpu"])
    out = []
    models = result.get("models") or list(dict.fromkeys(k.split("/")[0] for k in result["units"]))
    for unit in units(models):
        measured, reason = result["units"].get(unit.key), None
        if unit.device == "gpu" and not have_gpu:
            reason = "not measured (no GPU)"
        elif unit.device != result["device"]:
            reason = f"not measured (run with --device {unit.device})"
        peaks = result["matmul_peaks"]
        peak = peaks[unit.device]["gflops"] * 1e9 if unit.device in peaks else None
        flops = result["flops_per_input_pixel"].get(unit.model.key, 0.0)
        out += cells_for(unit, measured, reason, flops, peak)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"## Tier table measured on {result['machine_line']}",
        "",
        "Each cell: this machine's time for a 30 fps clip of that length (* = extrapolated from steady-state "
        "s/frame; † = also scaled by pixel count from a crop), then the seed's claim and measured / claimed.",
        "",
        *([f"Footage: animation on {result['held']}s ({result['source']}), reuse on (the default).", ""]
          if result.get("held", 1) > 1 else []),
    ]
    cells = result["cells"]
    for model in dict.fromkeys(c["model"] for c in cells):
        for reading in READINGS:
            sub = [c for c in cells if c["model"] == model and c["reading"] == reading]
            if not sub:
                continue
            what = "1080p input" if reading == "input" else "1080p output (input 960x540 2x, 480x270 4x)"
            name = "lanczos (no network: the pipeline's own cost)" if model == "lanczos" else model
            lines += [f"### {name}, {what}", "", "| length | " + " | ".join(
                f"{t.name} ({t.device.upper()} {t.scale}x)" for t in TIERS.values()) + " |",
                "| --- |" + " --- |" * len(TIERS)]
            for length in LENGTHS:
                row = [f"{length} s" if length < 60 else f"{length // 60} min"]
                for tier in TIERS:
                    c = next(c for c in sub if c["tier"] == tier and c["length_s"] == length)
                    row.append(cell_text(c))
                lines.append("| " + " | ".join(row) + " |")
            lines.append("")
    lines += [
        "### What the FLOP count says (10 s row; the other rows scale the same)",
        "",
        "Needed = network FLOPs for 300 frames / claimed seconds, against the seed instance's spec peak "
        "(t3.xlarge <= 0.40 TFLOP/s fp32, T4 65 TFLOP/s fp16; above 1x no implementation can meet the claim "
        "there). Floor here = those FLOPs / this run's measured matmul peak.",
        "",
        "| model | reading | tier | GFLOP / frame | claim needs | x seed instance peak | floor here (10 s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in cells:
        if c["length_s"] != 10 or not c.get("flops_per_frame"):
            continue
        lines.append(
            f"| {c['model']} | {c['reading']} ({c['input']}) | {c['tier']} | "
            f"{c['flops_per_frame'] / 1e9:,.0f} | {c['claim_needs_tflops']:.2f} TFLOP/s | "
            f"{c['claim_over_seed_instance_peak']:.2f}x | "
            f"{common.fmt_seconds(c['floor_seconds_this_machine'])} |"
        )
    lines += [
        "",
        "### Per measurement",
        "",
        "| model | tier | reading | input | measured on | s/frame (min / median) | peak RSS | "
        "$ / video-min (this machine's time at the instance price) | claimed $ / video-min |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in cells:
        if c["length_s"] != 60 or c["seconds"] is None:
            continue
        sf = c["s_per_frame"]
        lines.append(
            f"| {c['model']} | {c['tier']} | {c['reading']} | {c['input']} | {c['memory_measured_at']} | "
            f"{sf['min']:.3f} / {sf['median']:.3f} | {c['peak_rss_bytes'] / 2**30:.2f} GiB | "
            f"${c['usd_per_video_minute_this_machine_time']:.2f} | ${c['claimed_usd_per_video_minute']:.3f} |"
        )
    lines += ["", f"Claimed memory: CPU {CLAIMED_MEMORY['cpu']}, GPU {CLAIMED_MEMORY['gpu']}. "
              "Peak RSS is of the measured run (its input size is in 'measured on').", "",
              f"Command: `{result['command']}` (finished {result['finished_utc']})", ""]
    return "\n".join(lines)


def cell_text(c: dict[str, Any]) -> str:
    claim = common.fmt_seconds(c["claimed_seconds"])
    if c["seconds"] is None:
        return f"{c['note']} (claim {claim})"
    mark = ""
    if c["extrapolated"]:
        mark = "*†" if "scaled from" in c["method"] else "*"
    return f"{common.fmt_seconds(c['seconds'])}{mark} (claim {claim}, {c['ratio']:.3g}x)"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 6))
    colours = {"RealESRGAN_x4plus": "tab:red", "realesr-animevideov3": "tab:blue", "lanczos": "tab:green"}
    markers = {("input", "basic"): "o", ("input", "standard"): "s", ("output", "basic"): "^",
               ("output", "standard"): "D", ("input", "premium"): "P", ("input", "pro"): "X",
               ("output", "premium"): "v", ("output", "pro"): "*"}
    measured = [c for c in result["cells"] if c["seconds"] is not None]
    for c in measured:
        ax.scatter(c["claimed_seconds"], c["seconds"], color=colours.get(c["model"], "k"),
                   marker=markers[(c["reading"], c["tier"])], s=40,
                   facecolors="none" if c["extrapolated"] else colours.get(c["model"], "k"))
    lo = min([c["claimed_seconds"] for c in measured] + [c["seconds"] for c in measured]) / 2
    hi = max([c["claimed_seconds"] for c in measured] + [c["seconds"] for c in measured]) * 2
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="measured = claimed")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seed's claimed time (s)")
    ax.set_ylabel("time on this machine (s); hollow = extrapolated")
    for model in dict.fromkeys(c["model"] for c in measured):
        ax.scatter([], [], color=colours.get(model, "k"), marker="o", label=model)
    for (reading, tier), marker in markers.items():
        if any(c["reading"] == reading and c["tier"] == tier for c in measured):
            ax.scatter([], [], color="grey", marker=marker, label=f"{tier}, 1080p {reading}")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Tier table: claimed vs measured\n{result['machine_line']}", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny crops, one timed frame: a smoke test")
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement (min/median reported)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--end-to-end-budget", type=float, default=0.0,
                        help="run the 10 s row end to end (300 frames, full size) where predicted <= S s")
    parser.add_argument("--held", type=int, choices=[1, 2, 3], default=1,
                        help="footage held on 2s or 3s (animation); 1: every frame changes")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")
    parser.add_argument("--out", type=Path, help="result stem (default results/tiers-DEVICE[-quick])")
    parser.add_argument("--rerender", type=Path, metavar="JSON",
                        help="measure nothing: rebuild cells, Markdown and plot from a result JSON")
    args = parser.parse_args()
    if args.rerender:
        result = json.loads(args.rerender.read_text())
        result["cells"] = cells(result)
        stem = args.out or args.rerender.with_suffix("")
    else:
        common.require_device(parser, args.device)
        result = run(args)
        stem = args.out or common.RESULTS / (f"tiers-{args.device}" + ("-quick" if args.quick else ""))
    common.write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(markdown(result))
    plot(result, stem.with_suffix(".png"))
    print(json.dumps(result, indent=2) if args.json else markdown(result))


if __name__ == "__main__":
    main()
