"""N files in one ``streamup upscale IN... OUTDIR/`` against N ``streamup upscale IN OUT`` commands, one run.

    .venv/bin/python -m benchmarks.many [--files 4] [--repeats 2]

The files are copies of ``examples/sample.mp4`` (24 frames 320x180 with AAC audio: a short clip, where the
per-command start-up the many-file command pays once is the largest share), upscaled x2 by the default model
(realesr-animevideov3) on the CPU. The two ways alternate which goes first run by run (the machine is shared:
a slow spell hits both); each is timed as whole commands (interpreter, imports, model load, the files), with
the 1-minute load average beside it. The outputs of both ways are checked for the same frame count.
Result: ``benchmarks/results/many.json``; the ratio (N commands / one command) printed side by side.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import common

SAMPLE = common.REPO / "examples" / "sample.mp4"
MODEL = "realesr-animevideov3"


def streamup(*args: str) -> float:
    """Run ``python -m streamup upscale ARGS`` (this checkout) to completion; its wall seconds."""
    cmd = [sys.executable, "-m", "streamup", "upscale", *args, "--model", MODEL, "--scale", "2", "--device",
           "cpu", "--weights-dir", str(common.WEIGHTS), "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=common.REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(common.REPO)})
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-800:]}")
    return time.perf_counter() - start


def one_command(inputs: list[Path], outdir: Path) -> float:
    shutil.rmtree(outdir, ignore_errors=True)
    return streamup(*map(str, inputs), f"{outdir}/")


def n_commands(inputs: list[Path], outdir: Path) -> float:
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    return sum(streamup(str(source), str(outdir / source.name)) for source in inputs)


def frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True)
    return int(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=common.RESULTS / "many.json")
    args = parser.parse_args()
    ways = {"one_command": one_command, "n_commands": n_commands}
    walls: dict[str, list[float]] = {w: [] for w in ways}
    loads: list[float] = []
    with common.scratch() as tmpdir:
        tmp = Path(tmpdir)
        inputs = []
        for i in range(args.files):
            inputs.append(tmp / f"episode{i + 1}.mp4")
            shutil.copy(SAMPLE, inputs[-1])
        for r in range(args.repeats):
            for way in (list(ways) if r % 2 == 0 else list(reversed(ways))):
                loads.append(os.getloadavg()[0])
                walls[way].append(ways[way](inputs, tmp / way))
                print(f"run {r + 1} {way}: {walls[way][-1]:.1f} s", flush=True)
        loads.append(os.getloadavg()[0])
        counts = {way: [frames(tmp / way / source.name) for source in inputs] for way in ways}
    expected = frames(SAMPLE)
    assert all(c == expected for way in counts.values() for c in way), counts
    medians = {way: statistics.median(values) for way, values in walls.items()}
    ratios = [n / one for n, one in zip(walls["n_commands"], walls["one_command"], strict=True)]
    result = {
        "benchmark": "many",
        "case": f"{args.files} copies of examples/sample.mp4 (24 frames 320x180, AAC), {MODEL} x2 on the CPU",
        "machine": {"cpu_model": common.cpu_model(), "cpu_threads": os.cpu_count()},
        "load_avg_1m": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "one_command": {"command": f"streamup upscale IN1 ... IN{args.files} OUTDIR/",
                        "wall_s": walls["one_command"], "median_s": medians["one_command"]},
        "n_commands": {"command": "streamup upscale IN OUT, once per file", "wall_s": walls["n_commands"],
                       "median_s": medians["n_commands"]},
        "frames_per_output": expected,
        "ratio_n_commands_over_one_per_run": ratios,
        "ratio_median": statistics.median(ratios),
        "command": f"python -m benchmarks.many --files {args.files} --repeats {args.repeats}",
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    common.write_json(args.out, result)
    print(f"{common.cpu_model()}, load {min(loads):.1f}-{max(loads):.1f}: {args.files} files in one command "
          f"{medians['one_command']:.1f} s | {args.files} commands {medians['n_commands']:.1f} s | "
          f"ratio {result['ratio_median']:.2f}x (median of {args.repeats}); wrote {args.out}")


if __name__ == "__main__":
    main()
