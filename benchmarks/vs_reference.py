"""The official Real-ESRGAN video path vs ``streamup upscale``: same clip, same model, same machine, one run.

The official path is ``inference_realesrgan_video.py`` vendored at a pinned upstream commit
(``benchmarks/reference/``): ``RealESRGANer`` frame by frame between an ffmpeg decode pipe and an ffmpeg
encode pipe (ffmpeg-python). As published it cannot run on a CPU-only machine; the vendored copy carries only
the patches that fix that (see its header), and this script runs it with ``--fp32`` from a temporary working
directory whose ``weights/`` links to ../shared/weights, through ``reference/shim.py`` (basicsr's removed
torchvision import). Both sides are timed as whole commands (start-up, model load, decode, model, encode),
with the peak RSS of the whole process tree; then the two outputs are compared by PSNR (``fidelity.py psnr``)
and each against the ground truth.

    .venv/bin/python -m benchmarks.vs_reference [--quick] [--repeats N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common

REFERENCE = common.REPO / "benchmarks" / "reference"
OFFICIAL = REFERENCE / "inference_realesrgan_video.py"
UPSTREAM = "https://github.com/xinntao/Real-ESRGAN"
UPSTREAM_COMMIT = "a4abfb2979a7bbff3f69f58f58ae324608821e27"
PATCHES = [
    "run(): process pool of torch.cuda.device_count() = 0 workers -> max(device_count, 1) (Pool(0) raises)",
    "inference_video(): torch.cuda.synchronize(device) per frame -> only when CUDA is available",
]
HOW_RUN = [
    "--fp32 (the script defaults to fp16, half=True)",
    "weights/<name>.pth from the working directory -> a temporary cwd whose weights/ links to "
    f"{common.WEIGHTS}",
    "basicsr 1.4.2's import of torchvision.transforms.functional_tensor -> the benchmarks/reference/shim.py "
    "alias",
]
# The official Writer hard-codes libx264 at its defaults (crf 23, preset medium, yuv420p); streamup's default
# is crf 18. Encoding the same way keeps both the timing (x264 cost) and the PSNR about the upscaling.
MATCH_OFFICIAL_ENCODER = ["--codec", "libx264", "--crf", "23", "--preset", "medium"]
SOURCE = common.MEDIA / "sr_input_x4_160x90.mkv"  # the x4 SR input: its ground truth is sr_gt_640x360.mkv
TRUTH = common.MEDIA / "sr_gt_640x360.mkv"
# Frames per model: x4plus costs ~36 MFLOP per input pixel (seconds per 160x90 frame on 2 cores),
# animevideov3 ~1.2 MFLOP (a fraction of a second), so it gets the whole 2 s clip.
FRAMES = {"x4plus": 4, "animevideov3": 48}
QUICK_FRAMES = {"x4plus": 1, "animevideov3": 6}


def streamup_command() -> list[str]:
    """The installed ``streamup`` console script, or ``python -m streamup`` (the same ``cli.main``)."""
    script = Path(sys.executable).with_name("streamup")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "streamup"]


def run_official(model: common.Model, clip: Path, out_dir: Path, scale: int) -> tuple[common.TreeRun, Path]:
    cwd = out_dir / "official-cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    link = cwd / "weights"
    if not link.exists():
        link.symlink_to(common.WEIGHTS, target_is_directory=True)
    cmd = [
        sys.executable, str(REFERENCE / "shim.py"), str(OFFICIAL),
        "-i", str(clip), "-o", str(out_dir), "-n", model.name, "-s", str(scale), "--fp32",
    ]
    run = common.run_tree(cmd, cwd=cwd, env=dict(os.environ))
    return run, out_dir / f"{clip.stem}_out.mp4"


def run_streamup(
    model: common.Model, clip: Path, out: Path, scale: int, encoder: list[str] = MATCH_OFFICIAL_ENCODER
) -> common.TreeRun:
    cmd = [*streamup_command(), "upscale", str(clip), str(out), "--model", model.name, "--scale", str(scale),
           "--device", "cpu", "--weights-dir", str(common.WEIGHTS), *encoder]
    return common.run_tree(cmd, cwd=common.REPO, env=dict(os.environ))


def compare(model: common.Model, frames: int, repeats: int, scale: int, tmp: Path) -> dict[str, Any]:
    clip = common.make_clip(SOURCE, tmp / f"{model.key}_{frames}f.mp4", frames=frames)
    truth = common.make_clip(TRUTH, tmp / f"truth_{frames}f.mp4", frames=frames) if scale == 4 else None
    runs = []
    for r in range(repeats):
        out_dir = tmp / f"{model.key}-official-{r}"
        ours = tmp / f"{model.key}-streamup-{r}.mp4"
        if r % 2 == 0:  # alternate who goes first, so a slow spell on a shared machine hits both
            official, official_out = run_official(model, clip, out_dir, scale)
            mine = run_streamup(model, clip, ours, scale)
        else:
            mine = run_streamup(model, clip, ours, scale)
            official, official_out = run_official(model, clip, out_dir, scale)
        runs.append({
            "official": {"wall_s": official.wall_s, "cpu_s": official.cpu_s,
                         "peak_tree_rss_bytes": official.peak_tree_rss_bytes},
            "streamup": {"wall_s": mine.wall_s, "cpu_s": mine.cpu_s,
                         "peak_tree_rss_bytes": mine.peak_tree_rss_bytes},
            "ratio_official_over_streamup": official.wall_s / mine.wall_s,
        })
    # Both timed outputs went through x264 at crf 23, so their PSNR mixes implementation and encoder
    # differences. One untimed lossless (ffv1) streamup run separates them: lossless-vs-official against
    # lossless-vs-streamup's own crf 23 encode (the encoder's noise level).
    lossless = tmp / f"{model.key}-streamup-lossless.mkv"
    run_streamup(model, clip, lossless, scale, ["--codec", "ffv1"])
    psnr = {
        "streamup_vs_official_db": common.psnr(ours, official_out),
        "streamup_lossless_vs_official_db": common.psnr(lossless, official_out),
        "streamup_lossless_vs_streamup_crf23_db": common.psnr(lossless, ours),
    }
    if truth is not None:
        psnr["official_vs_truth_db"] = common.psnr(official_out, truth)
        psnr["streamup_vs_truth_db"] = common.psnr(ours, truth)
    ratios = [r["ratio_official_over_streamup"] for r in runs]
    return {
        "model": model.name,
        "clip": f"{SOURCE.name}, first {frames} frames (160x90 -> {160 * scale}x{90 * scale}), "
        "as lossless x264 mp4",
        "frames": frames,
        "scale": scale,
        "official_wall_s": common.spread([r["official"]["wall_s"] for r in runs]),
        "streamup_wall_s": common.spread([r["streamup"]["wall_s"] for r in runs]),
        "official_s_per_frame_median": statistics.median(r["official"]["wall_s"] for r in runs) / frames,
        "streamup_s_per_frame_median": statistics.median(r["streamup"]["wall_s"] for r in runs) / frames,
        "ratio_official_over_streamup": common.spread(ratios),
        "psnr": psnr,
        "runs": runs,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    frames = QUICK_FRAMES if args.quick else FRAMES
    models = {k: common.MODELS[k] for k in args.models}
    with common.scratch() as tmpdir:
        results = {
            key: compare(model, frames[key], args.repeats, args.scale, Path(tmpdir))
            for key, model in models.items()
        }
    return {
        "benchmark": "vs_reference",
        "quick": args.quick,
        "repeats": args.repeats,
        "machine": common.machine(),
        "official": {
            "source": f"{UPSTREAM}/blob/{UPSTREAM_COMMIT}/inference_realesrgan_video.py",
            "commit": UPSTREAM_COMMIT,
            "license": "BSD-3-Clause (benchmarks/reference/LICENSE-Real-ESRGAN)",
            "patches": PATCHES,
            "run_as": HOW_RUN,
            "command": "python benchmarks/reference/shim.py "
            "benchmarks/reference/inference_realesrgan_video.py -i CLIP -o DIR -n MODEL -s SCALE --fp32",
        },
        "streamup": {"command": "streamup upscale CLIP OUT.mp4 --model MODEL --scale SCALE --device cpu "
                     "--weights-dir ../shared/weights " + " ".join(MATCH_OFFICIAL_ENCODER),
                     "runs_as": streamup_command()[:2]},
        "models": results,
        "command": ".venv/bin/python -m benchmarks.vs_reference"
        + f" --repeats {args.repeats} --scale {args.scale}"
        + (" --quick" if args.quick else "") + f" --models {' '.join(args.models)}",
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def markdown(result: dict[str, Any]) -> str:
    off = result["official"]
    lines = [
        f"## streamup vs the official Real-ESRGAN video script ({common.machine_line(result['machine'])})",
        "",
        f"Official: `inference_realesrgan_video.py` at {off['commit'][:12]} ({off['license']}), patched only "
        "to run on a CPU: " + "; ".join(off["patches"]) + ". Run with: " + "; ".join(off["run_as"]) + ".",
        "",
        "| model | clip | official wall (min / median) | streamup wall (min / median) | official s/frame | "
        "streamup s/frame | official / streamup (per run: min / median) | PSNR streamup vs official | "
        "PSNR lossless streamup vs official / vs its own crf 23 | "
        "PSNR vs ground truth (official / streamup) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in result["models"].values():
        o, s, r, p = m["official_wall_s"], m["streamup_wall_s"], m["ratio_official_over_streamup"], m["psnr"]
        truth = (f"{p['official_vs_truth_db']:.2f} / {p['streamup_vs_truth_db']:.2f} dB"
                 if "official_vs_truth_db" in p else "—")
        lines.append(
            f"| {m['model']} | {m['frames']} frames {m['clip'].split('(')[1].split(')')[0]} | "
            f"{o['min']:.1f} / {o['median']:.1f} s | {s['min']:.1f} / {s['median']:.1f} s | "
            f"{m['official_s_per_frame_median']:.2f} | {m['streamup_s_per_frame_median']:.2f} | "
            f"{r['min']:.2f}x / {r['median']:.2f}x | {p['streamup_vs_official_db']:.2f} dB | "
            f"{p['streamup_lossless_vs_official_db']:.2f} / "
            f"{p['streamup_lossless_vs_streamup_crf23_db']:.2f} dB | {truth} |"
        )
    lines += [
        "",
        "Wall times are whole commands (interpreter start, imports, model load, decode, inference, encode), "
        f"{result['repeats']} runs each, alternating which side goes first. s/frame = median wall / frames. "
        "streamup encodes like the official Writer (libx264 crf 23, preset medium); the lossless streamup "
        "run (ffv1, untimed) shows how much of the PSNR gap is x264's own noise.",
        "",
        f"Command: `{result['command']}` (finished {result['finished_utc']})",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 6 frames: a smoke test")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--scale", type=int, choices=[2, 4], default=4)
    parser.add_argument("--models", nargs="+", choices=list(common.MODELS), default=list(common.MODELS))
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the Markdown")
    parser.add_argument("--out", type=Path, help="result stem (default results/vs_reference[-quick])")
    args = parser.parse_args()
    result = run(args)
    stem = args.out or common.RESULTS / ("vs_reference" + ("-quick" if args.quick else ""))
    common.write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(markdown(result))
    print(json.dumps(result, indent=2) if args.json else markdown(result))


if __name__ == "__main__":
    main()
