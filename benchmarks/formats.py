"""What the studio formats cost, and what each one comes out as (with fidelity.py's verdict).

  .venv/bin/python -m benchmarks.formats [--frames 24] [--repeats 2] [--out benchmarks/results/formats.json]

1. Speed: the same picture (the first ``--frames`` frames of main_h264_aac_640x360.mp4, 640x360) made into
   each source format below with Debian's ffmpeg, then ``streamup.upscale`` x2 with the lanczos model (so the
   pipeline's own cost shows; a network costs seconds per frame on a CPU and hides all of it) into the
   format's default output. Reported: whole-run wall and CPU seconds (median of ``--repeats``), per frame,
   busy seconds per stage, and the ratio of CPU time to the 4:2:0 8-bit baseline (CPU time, because the
   machine is shared and wall time would measure the neighbours). Two rows keep the codec fixed (FFV1, into
   .mkv) so the cost of the pixel layout alone shows apart from the cost of the codec.
2. Fidelity: every test clip of ``tests.media.clips`` upscaled into its default output container, then
   ``../shared/tools/fidelity.py compare`` on it: source format → output format → passed / failed checks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import FIDELITY, MEDIA, RESULTS, ffmpeg, machine, machine_line
from streamup.engine.lanczos import LanczosUpscaler
from streamup.options import UpscaleOptions
from streamup.pipeline import upscale
from tests.media import clips

# name → (source description, container, ffmpeg encode arguments). The first row is the baseline.
SOURCES: dict[str, tuple[str, str, list[str]]] = {
    "420_8": ("H.264 4:2:0 8-bit", ".mp4", ["-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p"]),
    "422_10": ("ProRes 422 HQ 10-bit", ".mov", ["-c:v", "prores_ks", "-profile:v", "hq"]),
    "444_8": ("H.264 4:4:4 8-bit", ".mp4", ["-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p"]),
    "444_12": ("HEVC 4:4:4 12-bit", ".mkv", ["-c:v", "libx265", "-x265-params", "log-level=error:crf=12",
                                             "-pix_fmt", "yuv444p12le"]),
    "4444_alpha": ("ProRes 4444 + alpha", ".mov", ["-c:v", "prores_ks", "-profile:v", "4444",
                                                   "-pix_fmt", "yuva444p10le"]),
    "rgb_8": ("FFV1 RGB 8-bit (bgr0)", ".mkv", ["-c:v", "ffv1", "-pix_fmt", "bgr0"]),
    "rgb_16": ("FFV1 RGB 16-bit (gbrp16le)", ".mkv", ["-c:v", "ffv1", "-pix_fmt", "gbrp16le"]),
    "420_8_ffv1": ("FFV1 4:2:0 8-bit", ".mkv", ["-c:v", "ffv1", "-pix_fmt", "yuv420p"]),
    "444_16_ffv1": ("FFV1 4:4:4 16-bit", ".mkv", ["-c:v", "ffv1", "-pix_fmt", "yuv444p16le"]),
}
# The output container for each clip of tests.media.clips in the fidelity table.
FIDELITY_OUTPUTS = {".mov": ".mov", ".mkv": ".mkv", ".mp4": ".mp4", ".mpg": ".mp4", ".ts": ".mkv",
                    ".avi": ".mp4"}


def _probe(path: Path) -> str:
    argv = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
            "stream=codec_name,profile,pix_fmt,field_order", "-of", "json", str(path)]
    s = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)["streams"][0]
    profile = f" {s['profile']}" if s.get("profile") not in (None, "unknown") else ""
    order = s.get("field_order")
    interlaced = f", {order}" if order not in (None, "progressive", "unknown") else ""
    return f"{s['codec_name']}{profile} {s['pix_fmt']}{interlaced}"


def speed(folder: Path, frames: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for key, (what, ext, args) in SOURCES.items():
        src = folder / f"{key}{ext}"
        ffmpeg("-i", str(MEDIA / "main_h264_aac_640x360.mp4"), "-frames:v", str(frames), "-an", *args,
               str(src))
        out_ext = ".mkv" if key.endswith("_ffv1") else ext
        runs = []
        for _ in range(repeats):
            out = folder / f"{key}_x2{out_ext}"
            opts = UpscaleOptions(scale=2, model="lanczos", codec="ffv1" if key.endswith("_ffv1") else None)
            t0, c0 = time.perf_counter(), time.process_time()
            result = upscale(str(src), str(out), opts, upscaler=LanczosUpscaler(2))
            runs.append((time.perf_counter() - t0, time.process_time() - c0, result))
        seconds = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        result = runs[0][2]
        rows.append({"key": key, "source": what, "output": f"{result.output.codec} {result.output.pix_fmt}",
                     "frames": result.frames, "seconds": round(seconds, 3),
                     "ms_per_frame": round(1000 * seconds / result.frames, 1), "cpu_s": round(cpu, 3),
                     "cpu_ms_per_frame": round(1000 * cpu / result.frames, 1),
                     "stage_busy_s": {k: round(v, 3) for k, v in result.stage_busy_s.items()}})
    base = rows[0]["cpu_s"]
    ffv1_base = next(r["cpu_s"] for r in rows if r["key"] == "420_8_ffv1")
    for r in rows:  # ratios of CPU time: on a shared machine wall time measures the neighbours too
        r["cpu_vs_420_8"] = round(r["cpu_s"] / base, 2)
        if r["key"].endswith("_ffv1"):
            r["cpu_vs_420_8_ffv1"] = round(r["cpu_s"] / ffv1_base, 2)
    return rows


def fidelity(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for name, (what, _) in clips.RECIPES.items():
        src = clips.make(name, folder)
        out = folder / f"fid_{Path(name).stem}{FIDELITY_OUTPUTS[src.suffix]}"
        upscale(str(src), str(out), UpscaleOptions(scale=2, model="lanczos", preset="superfast"),
                upscaler=LanczosUpscaler(2))
        run = subprocess.run([sys.executable, str(FIDELITY), "compare", str(src), str(out), "--scale", "2",
                              "--json"], capture_output=True, text=True)
        checks = json.loads(run.stdout)
        rows.append({"clip": name, "what": what, "source": _probe(src), "output": _probe(out),
                     "output_container": out.suffix, "passed": all(c["ok"] for c in checks.values()),
                     "failed": {k: c["detail"] for k, c in checks.items() if not c["ok"]},
                     "checks": sorted(checks)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "formats.json")
    args = ap.parse_args()
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report = {"machine": info, "machine_line": machine_line(info),
                  "command": " ".join(["python -m benchmarks.formats", *sys.argv[1:]]),
                  "speed": speed(folder, args.frames, args.repeats), "fidelity": fidelity(folder)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(report["machine_line"])
    for r in report["speed"]:
        print(f"{r['source']:<28} → {r['output']:<26} {r['cpu_ms_per_frame']:>7} CPU ms/frame  "
              f"x{r['cpu_vs_420_8']}")
    for r in report["fidelity"]:
        print(f"{r['source']:<40} → {r['output']:<32} {'pass' if r['passed'] else r['failed']}")


if __name__ == "__main__":
    main()
