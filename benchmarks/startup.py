"""Time to the first frame of ``streamup upscale`` and what it is made of, for two checkouts in one run.

    .venv/bin/python -m benchmarks.startup --before /tmp/streamup-base [--repeats 5] [--frames 10]

The case is issue 17's: the first 10 frames of ``sr_gt_640x360.mkv`` (640x360 → 1280x720),
realesr-animevideov3, libx264 crf 23 preset medium (the official script's encoder), on the CPU. Each checkout
(``--before``: the code before the change, e.g. ``git archive`` of the base commit; the other is this
repository) is run as a fresh process with ``PYTHONPATH`` at its root, the two alternating run by run (the
machine is shared: a slow spell hits both), and every figure is the median over ``--repeats`` runs:

- ``command``: the real command, ``python -m streamup upscale ... --log-format json``: the wall from spawn to
  exit, and to its first progress record (read from its stderr as it comes), which ``upscale()`` emits when
  the first batch has come out of the network and is handed to the encoder: the time to the first frame;
  and from its last record ("wrote ...": the output is published) to its exit: the teardown.
- ``phases``: the same work step by step in one fresh process, timestamped from outside the code under test:
  interpreter start, ``import streamup.cli`` (what every command pays), the pipeline (PyAV, numpy), torch,
  spandrel (it imports torchvision), the model load (``build_upscaler``), the probe (opening the input),
  ``upscale()`` to its first progress snapshot (first batch), and to its end; wall and process CPU seconds.
- ``imports``: ``python -X importtime`` of the real command once per checkout: each top-level package's own
  import time (its modules' self times summed), largest first.

The 1-minute load average is recorded before and after each run: wall timings from a loaded machine are
only comparable within a run; CPU seconds (the command's whole process tree, or the phases process) are what
the work costs and move far less with the neighbours' load, so before/after is judged on them too.
Result: ``benchmarks/results/startup-cpu.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODEL = "realesr-animevideov3"
ENCODER = ["--codec", "libx264", "--crf", "23", "--preset", "medium"]
PHASES = ("interpreter", "import_cli", "import_pipeline", "import_torch", "import_spandrel", "model_load",
          "probe", "first_batch", "rest_of_run")


def command(clip: Path, out: Path) -> list[str]:
    """The measured command line (issue 17's case), as ``python -m streamup``."""
    return [sys.executable, "-m", "streamup", "upscale", str(clip), str(out), "--model", MODEL,
            "--scale", "2", "--device", "cpu", "--weights-dir", os.environ["STREAMUP_WEIGHTS_DIR"], *ENCODER,
            "--log-format", "json"]


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root)}


def run_command(root: Path, clip: Path, out: Path) -> dict[str, float]:
    """The real command from ``root``: wall to its first progress record and to its exit."""
    out.unlink(missing_ok=True)
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(command(clip, out), cwd=root, env=_env(root), stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    first = written = None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        record = json.loads(line) if line.startswith("{") else {}
        if first is None and "percent" in record:
            first = time.perf_counter() - start
        if record.get("event") == "done":  # the output is published; what follows is the interpreter's exit
            written = time.perf_counter()
    if proc.wait() or written is None:
        raise RuntimeError(f"streamup exited {proc.returncode}: {''.join(lines)[-800:]}")
    end = time.perf_counter()
    return {"first_frame_s": first if first is not None else float("nan"), "wall_s": end - start,
            "exit_after_output_s": end - written, "cpu_s": _children_cpu() - before}


def _children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_phases(root: Path, clip: Path, out: Path) -> dict[str, dict[str, float]]:
    """``child()`` in a fresh interpreter importing ``root``'s streamup: wall and process CPU seconds per
    phase (the interpreter's CPU is the child's CPU when its first line ran)."""
    out.unlink(missing_ok=True)
    spawned = time.time()
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--child", str(clip), str(out)], cwd=root,
                          env=_env(root), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"phases child exited {proc.returncode}: {proc.stderr[-800:]}")
    stamps = json.loads(proc.stdout.strip().splitlines()[-1])
    walls = [spawned, *(stamps[p][0] for p in PHASES)]
    cpus = [0.0, *(stamps[p][1] for p in PHASES)]
    return {"wall": {p: walls[i + 1] - walls[i] for i, p in enumerate(PHASES)},
            "cpu": {p: cpus[i + 1] - cpus[i] for i, p in enumerate(PHASES)}}


def _now() -> tuple[float, float]:
    """(wall clock, this process's CPU seconds, all threads)."""
    return time.time(), time.process_time()


def child(clip: str, out: str) -> None:
    """The phases, each stamped with ``_now()`` when done; printed as one JSON line."""
    stamps = {"interpreter": _now()}
    import streamup.cli  # noqa: F401 - what every command imports first

    stamps["import_cli"] = _now()
    from streamup import pipeline

    stamps["import_pipeline"] = _now()
    import torch  # noqa: F401

    stamps["import_torch"] = _now()
    import spandrel  # noqa: F401

    stamps["import_spandrel"] = _now()
    from streamup.options import UpscaleOptions

    options = UpscaleOptions(scale=2, model=MODEL, device="cpu", codec="libx264", crf=23, preset="medium",
                             weights_dirs=(os.environ["STREAMUP_WEIGHTS_DIR"],))
    upscaler = pipeline.build_upscaler(options)
    stamps["model_load"] = _now()
    from streamup.media.demux import Decoder

    with open(clip, "rb") as f:
        Decoder(f, clip).close()
    stamps["probe"] = _now()

    def first(_progress: object) -> None:
        stamps.setdefault("first_batch", _now())

    pipeline.upscale(clip, out, options, upscaler=upscaler, progress=first)
    stamps["rest_of_run"] = _now()
    print(json.dumps(stamps))


def import_times(root: Path, clip: Path, out: Path) -> list[dict[str, Any]]:
    """``-X importtime`` of the real command: each top-level package's own import seconds (the self time of
    all its modules), largest first; what a lazy import can move out of the way."""
    out.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-X", "importtime", *command(clip, out)[1:]], cwd=root,
                          env=_env(root), capture_output=True, text=True)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _cumulative, name = line[len("import time:"):].split("|")
        if own.strip().isdigit():
            package = name.strip().split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(own) / 1e6
    return [{"package": k, "seconds": round(v, 3)} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
            if v >= 0.01]


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("CLIP", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="a checkout of the code before the change")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "startup-cpu.json")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(REPO))
    from benchmarks import common

    os.environ.setdefault("STREAMUP_WEIGHTS_DIR", str(common.WEIGHTS))
    sides = {"after": REPO, **({"before": args.before.resolve()} if args.before else {})}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {s: {"command": [], "phases": []} for s in sides}
    loads: list[float] = []
    with common.scratch() as tmpdir:
        tmp = Path(tmpdir)
        clip = common.make_clip(common.MEDIA / "sr_gt_640x360.mkv", tmp / "clip.mp4", frames=args.frames)
        imports = {side: import_times(root, clip, tmp / "imports.mp4") for side, root in sides.items()}
        for r in range(args.repeats):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for side in order:
                loads.append(os.getloadavg()[0])
                runs[side]["command"].append(run_command(sides[side], clip, tmp / f"{side}.mp4"))
                runs[side]["phases"].append(run_phases(sides[side], clip, tmp / f"{side}-phases.mp4"))
                print(side, runs[side]["command"][-1], flush=True)
        loads.append(os.getloadavg()[0])
    summary = {
        side: {
            "command_wall_s": median([c["wall_s"] for c in runs[side]["command"]]),
            "command_cpu_s": median([c["cpu_s"] for c in runs[side]["command"]]),
            "command_first_frame_s": median([c["first_frame_s"] for c in runs[side]["command"]]),
            "command_exit_after_output_s": median([c["exit_after_output_s"] for c in runs[side]["command"]]),
            "phases_wall_s": {p: round(median([ph["wall"][p] for ph in runs[side]["phases"]]), 3)
                              for p in PHASES},
            "phases_cpu_s": {p: round(median([ph["cpu"][p] for ph in runs[side]["phases"]]), 3)
                             for p in PHASES},
            "imports": imports[side],
        }
        for side in sides
    }
    result = {
        "benchmark": "startup",
        "case": f"first {args.frames} frames of sr_gt_640x360.mkv (640x360 -> 1280x720, lossless x264 mp4), "
                f"{MODEL} x2 on the CPU, {' '.join(ENCODER)}",
        "command": "python -m benchmarks.startup" + (f" --before {args.before}" if args.before else "")
                   + f" --repeats {args.repeats} --frames {args.frames}",
        "machine": {"cpu_model": common.cpu_model(), "cpu_threads": os.cpu_count()},
        "load_avg_1m": {"min": min(loads), "median": median(loads), "max": max(loads)},
        "sides": {side: str(root) for side, root in sides.items()},
        "summary": summary,
        "runs": runs,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    common.write_json(args.out, result)
    for side, s in summary.items():
        print(f"{side}: whole command {s['command_wall_s']:.2f} s ({s['command_cpu_s']:.2f} s CPU), first "
              f"frame {s['command_first_frame_s']:.2f} s; phases, CPU s: {s['phases_cpu_s']}")
    print(f"load average (1 min) {min(loads):.1f}-{max(loads):.1f}; wrote {args.out}")


if __name__ == "__main__":
    main()
