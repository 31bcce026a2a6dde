"""Reuse of unchanged pictures (``--reuse auto``) against computing all (``--reuse off``), side by side.

Clips are made from the shared media, each a kind of picture that holds still in a different way:

- ``twos`` / ``threes``: Big Buck Bunny re-timed so each picture is held 2 / 3 frames (``framestep`` then
  ``fps`` back to 24), re-encoded with x264 crf 20, so repeats differ by compression noise as in real
  animation;
- ``box``: the still picture with a 32 px box moving across it (at 640x360: the engine's default CPU tile
  cuts it into two tiles, so one half of the frame is still and one moves);
- ``slides``: three pictures of Big Buck Bunny, each held 1.5 s;
- ``footage``: ordinary footage, every frame changes (the cost of trying); ``chaplin``: an old film
  transferred with some frames repeated.

Each clip is upscaled x2 with realesr-animevideov3 (one model loaded once, ``streamup.upscale`` with the
prebuilt engine, lossless FFV1 output so that only reuse differs), ``auto`` and ``off`` alternating which goes
first in each round, after a warm-up call (the first forward's kernel set-up is in neither). Per clip: frames
and tiles reused, speed-up (median over rounds of off / auto, in wall seconds and in the process's CPU
seconds, which a neighbour's load disturbs less than wall time), worst-frame and mean RGB PSNR of auto
against off, and flicker both ways: the mean absolute change of the output from one frame to the next (8-bit
levels) over the regions whose source did not change (16x16 input blocks whose mean absolute difference from
the previous frame is at most ``STATIC`` levels). The decision's
own cost is timed apart as well (``choose`` and ``fill`` on the clip's frames, per frame, against the
compute per frame), because on a shared machine a 2 % difference of wall time is within the noise.

    .venv/bin/python -m benchmarks.reuse [--rounds N] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks import common

MODEL = common.MODELS["animevideov3"].name
STATIC = 1.0  # levels: a 16x16 source block that moved less than this is "static" for the flicker measure
PSNR_CAP = 100.0  # dB: identical frames (infinite PSNR) are written as this
X264 = ["-an", "-c:v", "libx264", "-crf", "20", "-preset", "medium", "-pix_fmt", "yuv420p"]


def _bbb(tmp: Path, name: str, size: tuple[int, int], seconds: float, filters: str) -> Path:
    src = common.MEDIA / "main_h264_aac_640x360.mp4"
    out = tmp / f"{name}.mp4"
    vf = f"scale={size[0]}:{size[1]}:flags=lanczos{',' + filters if filters else ''}"
    common.ffmpeg("-i", str(src), "-vf", vf, "-t", str(seconds), *X264, str(out))
    return out


def _held(step: int) -> Callable[[Path, str, tuple[int, int], float], Path]:
    """Animation on ``step``s: every ``step``-th picture, each shown ``step`` times at 24 fps."""
    return lambda tmp, name, size, seconds: _bbb(tmp, name, size, seconds, f"framestep={step},fps=24")


def _footage(tmp: Path, name: str, size: tuple[int, int], seconds: float) -> Path:
    return _bbb(tmp, name, size, seconds, "")


def _chaplin(tmp: Path, name: str, size: tuple[int, int], seconds: float) -> Path:
    out = tmp / f"{name}.mp4"
    common.ffmpeg("-ss", "2", "-i", str(common.MEDIA / "orig_chaplin_640x360_h264_mp3.mp4"),
                  "-vf", f"scale={size[0]}:{size[1]}:flags=lanczos", "-t", str(seconds), *X264, str(out))
    return out


def _box(tmp: Path, name: str, size: tuple[int, int], seconds: float) -> Path:
    """The still picture with a 32 px box moving 6 px a frame along a line in its left half."""
    out = tmp / f"{name}.mp4"
    box = max(8, size[0] // 20)
    common.ffmpeg("-loop", "1", "-framerate", "24", "-i", str(common.MEDIA / "still_640x360.png"),
                  "-f", "lavfi", "-i", f"color=c=red:s={box}x{box}:r=24",
                  "-filter_complex",
                  f"[0]scale={size[0]}:{size[1]}:flags=lanczos[bg];"
                  f"[bg][1]overlay=x='{box}+mod(n*{max(1, box // 5)},{size[0] // 2 - 3 * box})'"
                  f":y={size[1] // 3}",
                  "-t", str(seconds), *X264, str(out))
    return out


def _slides(tmp: Path, name: str, size: tuple[int, int], seconds: float) -> Path:
    """Three pictures of the film (1 s apart), each held ``seconds / 3``."""
    out = tmp / f"{name}.mp4"
    hold = seconds / 3
    vf = (f"scale={size[0]}:{size[1]}:flags=lanczos,select='eq(n\\,24)+eq(n\\,48)+eq(n\\,72)',"
          f"setpts=N*{hold}/TB,fps=24")
    common.ffmpeg("-i", str(common.MEDIA / "main_h264_aac_640x360.mp4"), "-vf", vf,
                  "-t", str(seconds), *X264, str(out))
    return out


# kind: (maker, size, seconds). 320x180 fits one default CPU tile (384 px in bf16), so there reuse is of whole
# frames; the box clip is 640x360, two tiles, to show reuse of a part of the frame.
CLIPS: dict[str, tuple[Callable[[Path, str, tuple[int, int], float], Path], tuple[int, int], float]] = {
    "twos": (_held(2), (320, 180), 1.5),
    "threes": (_held(3), (320, 180), 1.5),
    "box": (_box, (640, 360), 1.0),
    "slides": (_slides, (320, 180), 4.5),
    "footage": (_footage, (320, 180), 1.5),
    "chaplin": (_chaplin, (320, 180), 1.5),
}
QUICK_CLIPS = {"twos": (_held(2), (160, 90), 0.5), "footage": (_footage, (160, 90), 0.5)}


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame of a video as 8-bit RGB."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def flicker(source: list[np.ndarray], output: list[np.ndarray], scale: int) -> float:
    """Mean absolute frame-to-frame change of ``output`` over the blocks whose source is static."""
    from streamup.pipeline.reuse import BLOCK

    total, count = 0.0, 0
    for n in range(1, len(source)):
        d = np.abs(source[n].astype(np.int16) - source[n - 1]).mean(axis=2)
        still = _block_means(d, BLOCK) <= STATIC
        if not still.any():
            continue
        o = np.abs(output[n].astype(np.int16) - output[n - 1]).mean(axis=2)
        moved = _block_means(o, BLOCK * scale)
        total += float(moved[still].sum())
        count += int(still.sum())
    return total / count if count else 0.0


def _block_means(d: np.ndarray, block: int) -> np.ndarray:
    ys, xs = np.arange(0, d.shape[0], block), np.arange(0, d.shape[1], block)
    sums = np.add.reduceat(np.add.reduceat(d, ys, axis=0), xs, axis=1)
    return sums / np.outer(np.diff(ys, append=d.shape[0]), np.diff(xs, append=d.shape[1]))


def decision_cost(upscaler: Any, source: list[np.ndarray], scale: int) -> float:
    """Seconds per frame that ``choose`` and ``fill`` take on these frames (outputs: one blank frame)."""
    from streamup.pipeline.reuse import Reuse

    reuse = Reuse(upscaler.grid, scale)
    h, w, _ = source[0].shape
    blank = np.zeros((h * scale, w * scale, 3), np.uint8)
    start = time.perf_counter()
    for image in source:
        choice = reuse.choose(image)
        reuse.fill(blank if choice.compute else None, choice)
    return (time.perf_counter() - start) / len(source)


def measure_clip(upscaler: Any, clip: Path, tmp: Path, rounds: int) -> dict[str, Any]:
    from streamup.options import UpscaleOptions
    from streamup.pipeline import upscale

    seconds: dict[str, list[float]] = {"auto": [], "off": []}
    cpu: dict[str, list[float]] = {"auto": [], "off": []}
    results: dict[str, Any] = {}
    outputs = {mode: tmp / f"{clip.stem}-{mode}.mkv" for mode in seconds}
    for r in range(rounds):
        for mode in (("auto", "off") if r % 2 == 0 else ("off", "auto")):
            options = UpscaleOptions(scale=2, model=MODEL, codec="ffv1", reuse=mode)
            cpu0 = time.process_time()
            results[mode] = upscale(str(clip), str(outputs[mode]), options, upscaler=upscaler)
            cpu[mode].append(time.process_time() - cpu0)
            seconds[mode].append(results[mode].seconds)
    source = frames_of(clip)
    auto, off = frames_of(outputs["auto"]), frames_of(outputs["off"])
    assert len(auto) == len(off) == len(source), (len(auto), len(off), len(source))
    psnrs = [psnr(a, b) for a, b in zip(auto, off, strict=True)]
    res = results["auto"]
    tiles = res.tiles_reused + res.tiles_computed
    per_frame_off = statistics.median(seconds["off"]) / len(source)
    cost = decision_cost(upscaler, source, 2)
    return {
        "size": f"{source[0].shape[1]}x{source[0].shape[0]}",
        "frames": len(source),
        "tiles_per_frame": tiles // max(1, res.frames),
        "frames_reused_pct": 100.0 * res.frames_reused / res.frames,
        "tiles_reused_pct": 100.0 * res.tiles_reused / max(1, tiles),
        "seconds": {mode: common.spread(v) for mode, v in seconds.items()},
        "cpu_seconds": {mode: common.spread(v) for mode, v in cpu.items()},
        "speedup": _ratio(seconds),
        "cpu_speedup": _ratio(cpu),
        "psnr_worst_db": min(psnrs),
        "psnr_mean_db": statistics.fmean(psnrs),
        "flicker_auto": flicker(source, auto, 2),
        "flicker_off": flicker(source, off, 2),
        "decision_ms_per_frame": 1000 * cost,
        "decision_share_pct": 100 * cost / per_frame_off,
        "held_bytes": res.reuse_held_bytes,
    }


def _ratio(times: dict[str, list[float]]) -> float:
    """off / auto per round, the median of the rounds."""
    return statistics.median(o / a for o, a in zip(times["off"], times["auto"], strict=True))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from streamup.options import UpscaleOptions
    from streamup.pipeline import build_upscaler

    upscaler = build_upscaler(UpscaleOptions(scale=2, model=MODEL))
    upscaler.upscale([np.zeros((90, 160, 3), np.uint8)])  # the first forward builds kernels: not in a round
    clips: dict[str, Any] = {}
    with common.scratch() as tmpdir:
        tmp = Path(tmpdir)
        for kind, (make, size, seconds) in (QUICK_CLIPS if args.quick else CLIPS).items():
            clips[kind] = measure_clip(upscaler, make(tmp, kind, size, seconds), tmp, args.rounds)
            print(f"{kind}: {_row(kind, clips[kind])}", file=sys.stderr)
    footage = [c for k, c in clips.items() if k in ("footage", "chaplin")]
    return {
        "command": " ".join(["python -m benchmarks.reuse", *sys.argv[1:]]),
        "finished_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpu_model": common.cpu_model(), "cpu_threads": os.cpu_count(),
                    "avx512_bf16": "avx512_bf16" in common.cpu_flags(), "precision": upscaler.precision,
                    "lanes": upscaler.lanes},
        "model": MODEL,
        "scale": 2,
        "tile": upscaler.tile,
        "rounds": args.rounds,
        "clips": clips,
        "footage_cost_pct": max(100 * (1 - c["cpu_speedup"]) for c in footage) if footage else None,
        "footage_decision_share_pct": max(c["decision_share_pct"] for c in footage) if footage else None,
    }


def _row(kind: str, c: dict[str, Any]) -> str:
    return (f"| {kind} | {c['size']} x{c['frames']} | {c['frames_reused_pct']:.0f} % "
            f"| {c['tiles_reused_pct']:.0f} % | {c['speedup']:.2f}x | {c['cpu_speedup']:.2f}x "
            f"| {c['psnr_worst_db']:.1f} "
            f"| {c['psnr_mean_db']:.1f} | "
            f"{c['flicker_auto']:.3f} | {c['flicker_off']:.3f} | {c['decision_share_pct']:.2f} % |")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Reuse of unchanged pictures: {result['model']} x{result['scale']}, tile {result['tile']}",
        "",
        "{cpu_model}, {cpu_threads} threads, {precision}, {lanes} lanes".format(**result["machine"]),
        "",
        "| clip | size x frames | frames reused | tiles reused | speed-up (wall) | speed-up (CPU) "
        "| worst PSNR dB | mean PSNR dB | flicker auto | flicker off | decision cost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_row(kind, c) for kind, c in result["clips"].items()),
        "",
        f"PSNR of `--reuse auto` against `--reuse off` (RGB, {PSNR_CAP:.0f} = identical); flicker: mean "
        f"absolute frame-to-frame output change (8-bit levels) where the source moved at most {STATIC} level "
        "per 16x16 block; decision cost: choose + fill per frame over the compute per frame. Speed-ups: "
        "median over rounds of off / auto, in wall seconds and in the process's CPU seconds (all threads).",
    ]
    return common.markdown_with_command(lines, result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="two tiny clips: a smoke test of the script")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where reuse.json/.md go")
    args = parser.parse_args()
    result = run(args)
    common.save_result(args.out / ("reuse-quick" if args.quick else "reuse"), result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
