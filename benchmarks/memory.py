"""Is peak memory flat in the video's length? Peak RSS of ``streamup.upscale``, a short and a 6x longer clip.

Each run is a fresh process (VmHWM: its own peak, not the parent's). Cases (issue 10: "peak RSS for a 60 s
clip <= 5% above a 10 s clip, including 1080p input at x4"):

  lanczos x4, 1920x1080 input (7680x4320 output)  10 s and 60 s at 3 fps (30 / 180 frames)
  lanczos x2, 640x360 input                        10 s and 60 s at 6 fps (60 / 360 frames)

Low frame rates keep the runs affordable: x264 at 8K takes seconds per frame on 2 cores (a 60 s clip at
30 fps would take about an hour, more on a shared machine). Memory depends on the frames in flight, not on
seconds; what is in flight is bounded by bytes (the queues; the encoder's lookahead: ``mux.buffer_options``).
The pipeline and x264 fill up over the first ~20 frames at 8K (peak RSS at 10 / 20 / 30 / 60 frames: 2.52 /
3.35 / 3.46 / 3.49 GB, docs/benchmarks.md), so the short clip must hold more than that, as any real 10 s
clip does (240-300 frames); 1 fps (10 frames) measured the filling, not the length.
``--uncapped`` adds the 1080p short run with the encoder cap lifted (the module constant set in the child),
to show what the cap saves. ``--fill`` measures instead how the 1080p x4 peak builds up with the frame count
(10, 20, 30, 60 frames): where the pipeline is full, and so how short a "short" clip may be.

    .venv/bin/python -m benchmarks.memory [--uncapped] [--quick] [--fill]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks import common

# child: upscale argv[1] -> argv[2] with lanczos at scale argv[3]; argv[4] == "uncapped" lifts the encoder cap
_CHILD = """
import sys
from streamup import upscale, UpscaleOptions
if sys.argv[4] == "uncapped":
    from streamup.media import mux
    mux.ENCODER_LOOKAHEAD_BYTES = 1 << 62
r = upscale(sys.argv[1], sys.argv[2], UpscaleOptions(scale=int(sys.argv[3]), model="lanczos"))
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(r.frames, int(hwm) * 1024)
"""
CASES = {  # name: (input size, fps, scale, (short seconds, long seconds)), cheapest first
    "lanczos x2 640x360": ((640, 360), 6, 2, (10, 60)),
    "lanczos x4 1920x1080": ((1920, 1080), 3, 4, (10, 60)),
}
QUICK_CASES = {"lanczos x2 320x180": ((320, 180), 4, 2, (2, 12))}
FILL_FRAMES = (10, 20, 30, 60)


def peak(src: Path, dst: Path, scale: int, uncapped: bool = False) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run(
        [common.PYTHON, "-c", _CHILD, str(src), str(dst), str(scale), "uncapped" if uncapped else "capped"],
        capture_output=True, text=True, cwd=common.REPO, check=True)
    frames, rss = proc.stdout.split()[-2:]
    dst.unlink()
    return {"frames": int(frames), "peak_rss_bytes": int(rss), "wall_s": time.perf_counter() - start,
            "load_avg_1m": os.getloadavg()[0]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    machine = common.machine()
    with common.scratch() as tmpdir:
        tmp = Path(tmpdir)
        for name, (size, fps, scale, seconds) in (QUICK_CASES if args.quick else CASES).items():
            clips = [common.make_clip(common.MEDIA / "bench_1920x1080_h264_aac.mp4", tmp / f"{s}s.mp4",
                                      size=size, frames=s * fps, fps=fps, loop=True) for s in seconds]
            entry: dict[str, Any] = {"fps": fps, "seconds": seconds}
            results[name] = entry
            runs = [("short", clips[0], False), ("long", clips[1], False)]
            if args.uncapped and scale == 4:
                runs.insert(1, ("short_uncapped", clips[0], True))
            for label, clip, uncapped in runs:
                entry[label] = peak(clip, tmp / "out.mp4", scale, uncapped)
                if "long" in entry:
                    peaks = entry["long"]["peak_rss_bytes"], entry["short"]["peak_rss_bytes"]
                    entry["long_over_short"] = peaks[0] / peaks[1]
                print(name, label, entry[label], flush=True)
                save(args, summary(args, machine, results))  # partial results: the 8K runs take long
    return summary(args, machine, results)


def fill(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of the 1080p x4 case by frame count: the pipeline's and the encoder's filling."""
    points = {}
    with common.scratch() as tmpdir:
        tmp = Path(tmpdir)
        for frames in FILL_FRAMES:
            clip = common.make_clip(common.MEDIA / "bench_1920x1080_h264_aac.mp4", tmp / f"{frames}.mp4",
                                    size=(1920, 1080), frames=frames, fps=1, loop=True)
            points[str(frames)] = peak(clip, tmp / "out.mp4", 4)  # str: as JSON keys read back
            print(frames, points[str(frames)], flush=True)
    return {"benchmark": "memory-fill", "machine": common.machine(), "case": "lanczos x4 1920x1080",
            "points": points, "command": ".venv/bin/python -m benchmarks.memory --fill",
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def fill_markdown(result: dict[str, Any]) -> str:
    points = result["points"]
    last = points[str(FILL_FRAMES[-1])]
    lines = [f"## Peak memory as the pipeline fills ({common.machine_line(result['machine'])})", "",
             f"{result['case']} (8K output, default encoder settings), a fresh process per frame count.", "",
             "| frames | peak RSS | of the 60-frame peak |", "| --- | --- | --- |"]
    for frames, run in points.items():
        lines.append(f"| {frames} | {run['peak_rss_bytes'] / 2**30:.2f} GiB | "
                     f"{run['peak_rss_bytes'] / last['peak_rss_bytes']:.1%} |")
    return common.markdown_with_command(lines, result)


def summary(args: argparse.Namespace, machine: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"benchmark": "memory", "machine": machine, "cases": results,
            "command": ".venv/bin/python -m benchmarks.memory" + (" --uncapped" if args.uncapped else "")
            + (" --quick" if args.quick else ""),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def save(args: argparse.Namespace, result: dict[str, Any]) -> None:
    stem = args.out or common.RESULTS / ("memory-cpu" + ("-quick" if args.quick else ""))
    common.save_result(stem, result, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    gib = 2**30
    lines = [
        f"## Peak memory by video length ({common.machine_line(result['machine'])})",
        "",
        "| case | short clip | peak RSS | long clip | peak RSS | long / short | encoder cap lifted (short) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, c in result["cases"].items():
        cells = []
        for label in ("short", "long"):
            run = c.get(label)
            cells += [f"{c['seconds'][label == 'long']} s ({run['frames']} frames at {c['fps']} fps)",
                      f"{run['peak_rss_bytes'] / gib:.2f} GiB"] if run else ["not run (time)", "—"]
        un = c.get("short_uncapped")
        ratio = f"{c['long_over_short']:.3f}" if "long_over_short" in c else "—"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} | "
                     + (f"{un['peak_rss_bytes'] / gib:.2f} GiB |" if un else "— |"))
    lines += ["", "Peak RSS = VmHWM of a fresh process per run (default encoder settings: libx264 crf 18 "
              f"preset medium, mp4). Command: `{result['command']}` (finished {result['finished_utc']})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uncapped", action="store_true", help="also the 1080p short run without the cap")
    parser.add_argument("--quick", action="store_true", help="one tiny case: a smoke test")
    parser.add_argument("--fill", action="store_true", help="1080p x4 peak at 10, 20, 30, 60 frames")
    parser.add_argument("--out", type=Path, help="result stem (default results/memory-cpu[-quick|-fill])")
    args = parser.parse_args()
    if args.fill:
        result = fill(args)
        common.save_result(args.out or common.RESULTS / "memory-cpu-fill", result, fill_markdown(result))
    else:
        save(args, run(args))


if __name__ == "__main__":
    main()
