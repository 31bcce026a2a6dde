"""N files in one ``streamup upscale IN... OUTDIR/`` against N ``streamup upscale IN OUT`` commands, one run.

    .venv/bin/python -m benchmarks.many [--files 4] [--repeats 2]

The files are copies of ``examples/sample.mp4`` (24 frames 320x180 with AAC audio: a short clip, where the
per-command start-up the many-file command pays once is the largest share), upscaled x2 by the default model
(realesr-animevideov3) on the CPU. The two ways alternate which goes first run by run (the machine is shared:
a slow spell hits both); each is timed as whole commands (interpreter, imports, model load, the files), with
the 1-minute load average beside it, and by CPU seconds of the whole process tree (what the work costs,
which neighbours on a shared machine disturb far less than the wall). The outputs of both ways are checked
for the same frame count. Result: ``benchmarks/results/many.json``; the ratio (N commands / one command)
printed side by side, wall and CPU.
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


def streamup(*args: str) -> common.TreeRun:
    """Run ``python -m streamup upscale ARGS`` (this checkout) to completion: its wall and CPU seconds."""
    cmd = [sys.executable, "-m", "streamup", "upscale", *args, "--model", MODEL, "--scale", "2", "--device",
           "cpu", "--weights-dir", str(common.WEIGHTS), "--no-progress"]
    return common.run_tree(cmd, cwd=common.REPO, env={**os.environ, "PYTHONPATH": str(common.REPO)})


def one_command(inputs: list[Path], outdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``streamup upscale IN... OUTDIR/``."""
    shutil.rmtree(outdir, ignore_errors=True)
    run = streamup(*map(str, inputs), f"{outdir}/")
    return run.wall_s, run.cpu_s


def n_commands(inputs: list[Path], outdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``streamup upscale IN OUT`` per input, one after the other."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    runs = [streamup(str(source), str(outdir / source.name)) for source in inputs]
    return sum(r.wall_s for r in runs), sum(r.cpu_s for r in runs)


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
    cpus: dict[str, list[float]] = {w: [] for w in ways}
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
                wall, cpu = ways[way](inputs, tmp / way)
                walls[way].append(wall)
                cpus[way].append(cpu)
                print(f"run {r + 1} {way}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        loads.append(os.getloadavg()[0])
        counts = {way: [frames(tmp / way / source.name) for source in inputs] for way in ways}
    expected = frames(SAMPLE)
    assert all(c == expected for way in counts.values() for c in way), counts

    def ratios(values: dict[str, list[float]]) -> list[float]:
        return [n / one for n, one in zip(values["n_commands"], values["one_command"], strict=True)]

    def side(way: str, command: str) -> dict[str, object]:
        return {"command": command, "wall_s": walls[way], "cpu_s": cpus[way],
                "median_wall_s": statistics.median(walls[way]), "median_cpu_s": statistics.median(cpus[way])}

    result = {
        "benchmark": "many",
        "case": f"{args.files} copies of examples/sample.mp4 (24 frames 320x180, AAC), {MODEL} x2 on the CPU",
        "machine": {"cpu_model": common.cpu_model(), "cpu_threads": os.cpu_count()},
        "load_avg_1m": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "one_command": side("one_command", f"streamup upscale IN1 ... IN{args.files} OUTDIR/"),
        "n_commands": side("n_commands", "streamup upscale IN OUT, once per file"),
        "frames_per_output": expected,
        "ratio_wall_per_run": ratios(walls),
        "ratio_wall_median": statistics.median(ratios(walls)),
        "ratio_cpu_per_run": ratios(cpus),
        "ratio_cpu_median": statistics.median(ratios(cpus)),
        "command": f"python -m benchmarks.many --files {args.files} --repeats {args.repeats}",
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    common.write_json(args.out, result)
    one, n = result["one_command"], result["n_commands"]
    print(f"{common.cpu_model()}, load {min(loads):.1f}-{max(loads):.1f}; {args.files} files:\n"
          f"          | one command | {args.files} commands | ratio\n"
          f"  wall    | {one['median_wall_s']:.1f} s | {n['median_wall_s']:.1f} s | "
          f"{result['ratio_wall_median']:.2f}x\n"
          f"  CPU     | {one['median_cpu_s']:.1f} s | {n['median_cpu_s']:.1f} s | "
          f"{result['ratio_cpu_median']:.2f}x\n(medians of {args.repeats}) wrote {args.out}")


if __name__ == "__main__":
    main()
