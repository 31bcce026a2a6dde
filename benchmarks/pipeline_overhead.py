"""What the streaming pipeline costs on top of the engine, and whether its memory depends on video length.

  python benchmarks/pipeline_overhead.py [--frames 8] [--model realesr-animevideov3] [--out result.json]

1. fps of ``streamup.upscale`` (decode + colour + engine + encode + mux, x2, 640x360 input) on the first
   ``--frames`` frames of main_h264_aac_640x360.mp4, vs the engine alone (``build_upscaler(...).upscale``)
   on the same decoded RGB frames, in the same process, model loaded once beforehand. Done for the real
   default model and for lanczos (where the engine is cheap, so the pipeline's own cost shows).
2. Peak RSS (VmHWM of a fresh process) of a lanczos x2 run on a 5 s clip and on 10 s of the same
   footage (the 5 s clip looped twice, stream copy), plus the 10 s noaudio clip.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("STREAMUP_SHARED", REPO.parent / "shared")) / "media"
sys.path.insert(0, str(REPO))

from streamup.media.demux import Decoder, VideoFrame  # noqa: E402
from streamup.options import UpscaleOptions  # noqa: E402
from streamup.pipeline import build_upscaler, upscale  # noqa: E402

# VmHWM (this process's own peak), not ru_maxrss: Linux carries the parent's peak into a child's
# ru_maxrss across fork+exec, and this parent holds a loaded model.
_RSS = """
import sys
sys.path.insert(0, sys.argv[3])
from streamup import upscale, UpscaleOptions
r = upscale(sys.argv[1], sys.argv[2], UpscaleOptions(scale=2, model="lanczos"))
print(r.frames, next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def cut(frames: int, folder: Path) -> Path:
    """The first ``frames`` frames (and their audio) of the main clip, re-encoded near-losslessly."""
    out = folder / f"main_{frames}f.mp4"
    ffmpeg("-i", str(MEDIA / "main_h264_aac_640x360.mp4"), "-frames:v", str(frames), "-t", f"{frames / 24}",
           "-c:v", "libx264", "-crf", "12", "-c:a", "copy", str(out))
    return out


def engine_alone(clip: Path, options: UpscaleOptions) -> dict[str, float]:
    with clip.open("rb") as f:
        decoder = Decoder(f, clip.name)
        images = [i.image for i in decoder if isinstance(i, VideoFrame)]
        decoder.close()
    upscaler = build_upscaler(options)
    upscaler.upscale(images[:1])  # warm-up: first-call allocations are not per-frame cost
    t0 = time.perf_counter()
    for k in range(0, len(images), upscaler.batch_frames):
        upscaler.upscale(images[k:k + upscaler.batch_frames])
    seconds = time.perf_counter() - t0
    return {"frames": len(images), "seconds": round(seconds, 3), "fps": round(len(images) / seconds, 3)}


def end_to_end(clip: Path, options: UpscaleOptions, folder: Path) -> dict[str, object]:
    build_upscaler(options)  # loaded once per process: exclude model loading, as for the engine
    result = upscale(str(clip), str(folder / "out.mp4"), options)
    return {"frames": result.frames, "seconds": round(result.seconds, 3), "fps": round(result.fps, 3),
            "stage_busy_s": {k: round(v, 3) for k, v in result.stage_busy_s.items()}}


def peak_rss(clip: Path, folder: Path) -> dict[str, float]:
    run = subprocess.run([sys.executable, "-c", _RSS, str(clip), str(folder / "rss.mkv"), str(REPO)],
                         capture_output=True, text=True, check=True)
    frames, kib = run.stdout.split()
    return {"frames": int(frames), "peak_rss_mib": round(int(kib) / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=8, help="frames for the real-model comparison")
    ap.add_argument("--lanczos-frames", type=int, default=120)
    ap.add_argument("--model", default="realesr-animevideov3")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    record: dict[str, object] = {"machine": platform.machine(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for model, frames in ((args.model, args.frames), ("lanczos", args.lanczos_frames)):
            clip = cut(frames, folder)
            options = UpscaleOptions(scale=2, model=model)
            engine = engine_alone(clip, options)
            e2e = end_to_end(clip, options, folder)
            record[model] = {"input": "640x360 -> 1280x720 (x2)", "engine_alone": engine, "end_to_end": e2e,
                             "pipeline_overhead_pct": round(100 * (engine["fps"] / e2e["fps"] - 1), 1)}
        looped = folder / "main_10s.mp4"
        ffmpeg("-stream_loop", "1", "-i", str(MEDIA / "main_h264_aac_640x360.mp4"), "-c", "copy", str(looped))
        record["peak_rss_lanczos_x2"] = {
            "main_h264_aac_640x360.mp4 (5 s)": peak_rss(MEDIA / "main_h264_aac_640x360.mp4", folder),
            "same footage looped to 10 s": peak_rss(looped, folder),
            "noaudio_h264.mp4 (10 s, 640x272)": peak_rss(MEDIA / "noaudio_h264.mp4", folder),
        }
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
