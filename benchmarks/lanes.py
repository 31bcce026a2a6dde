"""One inference lane of all cores' threads against several single-threaded lanes, side by side in one run.

The engine's default on a CPU is ``tiling.CPU_LANES`` lanes (concurrent upscale calls), the cores split
between them. This script backs that default: rounds of ``streamup.upscale`` end to end (the ``pipeline``
kind of ``benchmarks.measure``: steady s/frame from a short and a long clip, each run a fresh process), with
``--lanes 1`` and ``--lanes 2`` alternating which goes first, so a slow spell on a shared machine hits both.
The ratio is formed per round; the median of the rounds is the verdict. ``--contended`` runs the same with
a neighbour: one busy-looping process beside the measured one for the whole run (what a shared host or a
second job does to a worker), on the animevideov3 x2 case only.

    .venv/bin/python -m benchmarks.lanes [--rounds N] [--quick] [--contended]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import common

# (model key, scale, input size, crop): the floor benchmark's clips, animevideov3 at both output scales
CASES = [("animevideov3", 2, (640, 360), None), ("animevideov3", 4, (640, 360), None),
         ("x4plus", 4, (640, 360), (128, 72))]
QUICK_CASES = [("animevideov3", 4, (160, 90), None)]
FRAMES, QUICK_FRAMES = (4, 16), (1, 3)
LANES = (1, 2)


@contextlib.contextmanager
def neighbour(busy: bool) -> Iterator[None]:
    """A process that keeps one core busy for the duration (``busy``), else nothing."""
    if not busy:
        yield
        return
    hog = subprocess.Popen([common.PYTHON, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def run(args: argparse.Namespace) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    chosen = QUICK_CASES if args.quick else CASES[:1] if args.contended else CASES
    with common.scratch() as tmpdir, neighbour(args.contended):
        tmp = Path(tmpdir)
        for key, scale, size, crop in chosen:
            clips = [common.make_clip(common.MEDIA / "bench_1920x1080_h264_aac.mp4", tmp / f"{key}-{n}.mp4",
                                      size=size, crop=crop, frames=n, loop=True)
                     for n in (QUICK_FRAMES if args.quick else FRAMES)]
            rounds = []
            for r in range(args.rounds):
                steady: dict[str, float] = {}  # by lane count, as a JSON key
                for lanes in LANES if r % 2 == 0 else LANES[::-1]:
                    run_ = common.measure("pipeline", src=clips[1], src_short=clips[0], dst=tmp / "out.mkv",
                                          model=key, scale=scale, device="cpu", lanes=lanes)
                    steady[str(lanes)] = run_["steady_s_per_frame"]
                rounds.append({"steady_s_per_frame": steady, "ratio_1_over_2": steady["1"] / steady["2"]})
                print(key, f"x{scale}", rounds[-1], flush=True)
            crop_note = f" ({crop[0]}x{crop[1]} centre crop)" if crop else ""
            cases[f"{key} x{scale}"] = {
                "clip": f"bench_1920x1080_h264_aac.mp4 scaled to {size[0]}x{size[1]}{crop_note}",
                "rounds": rounds,
                "median_ratio_1_over_2": statistics.median(r["ratio_1_over_2"] for r in rounds),
            }
    return {"benchmark": "lanes", "quick": args.quick, "contended": args.contended,
            "machine": common.machine(), "cases": cases,
            "command": f".venv/bin/python -m benchmarks.lanes --rounds {args.rounds}"
            + (" --quick" if args.quick else "") + (" --contended" if args.contended else ""),
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(result: dict[str, Any]) -> str:
    beside = ", beside a busy neighbour" if result.get("contended") else ""
    lines = [f"## Inference lanes, end to end{beside} ({common.machine_line(result['machine'])})", "",
             "Steady s/frame of `streamup.upscale` per round: 1 lane (torch on all cores) / 2 lanes (each on "
             "half of them); ratio > 1: two lanes are faster."
             + (" One busy-looping process ran beside every measurement." if result.get("contended") else ""),
             "",
             "| case | clip | rounds: 1 lane / 2 lanes (s/frame) | ratio per round | median ratio |",
             "| --- | --- | --- | --- | --- |"]
    for name, c in result["cases"].items():
        pairs = ", ".join(f"{r['steady_s_per_frame']['1']:.3f} / {r['steady_s_per_frame']['2']:.3f}"
                          for r in c["rounds"])
        ratios = ", ".join(f"{r['ratio_1_over_2']:.2f}" for r in c["rounds"])
        lines.append(f"| {name} | {c['clip']} | {pairs} | {ratios} | **{c['median_ratio_1_over_2']:.2f}x** |")
    return common.markdown_with_command(lines, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one tiny case: a smoke test")
    parser.add_argument("--contended", action="store_true", help="with a busy neighbour process")
    parser.add_argument("--out", type=Path, help="result stem (default: results/lanes-cpu...)")
    args = parser.parse_args()
    result = run(args)
    stem = "lanes-cpu" + ("-contended" if args.contended else "") + ("-quick" if args.quick else "")
    common.save_result(args.out or common.RESULTS / stem, result, markdown(result))


if __name__ == "__main__":
    main()
