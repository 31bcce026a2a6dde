"""What the fan-out tests compare, asked of ffmpeg/ffprobe (an independent judge, not PyAV)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def video_pts(path: Path) -> list[float]:
    """Every video frame's presentation time (s), ascending."""
    out = _run("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
               "-of", "csv=p=0", str(path))
    return sorted(float(line) for line in out.split())


def frame_hashes(path: Path) -> list[tuple[str, str]]:
    """(pts, md5) of every decoded video frame."""
    out = _run("ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-")
    rows = [[c.strip() for c in line.split(",")] for line in out.splitlines() if not line.startswith("#")]
    return [(r[2], r[5]) for r in rows]


def audio_md5(path: Path) -> list[str]:
    """MD5 of each audio stream's packet payloads, stream-copied (never decoded)."""
    count = len(_run("ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=index",
                     "-of", "csv=p=0", str(path)).split())
    return [_run("ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:a:{i}", "-c", "copy", "-f", "md5",
                 "-").strip() for i in range(count)]


def psnr(a: Path, b: Path) -> float:
    """Average PSNR (dB) of b against a, all frames."""
    err = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(a), "-i", str(b), "-lavfi", "psnr",
                          "-f", "null", "-"], check=True, capture_output=True, text=True).stderr
    value = re.search(r"average:(\S+)", err)
    assert value, err
    return float("inf") if value.group(1) == "inf" else float(value.group(1))


def decode_errors(path: Path) -> str:
    """What ffmpeg complains about while demuxing and decoding the whole file (DTS order included)."""
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-map", "0:a?", "-f", "null", "-"]
    return subprocess.run(cmd, capture_output=True, text=True).stderr.strip()


def rotation(path: Path) -> str:
    return _run("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                "stream_side_data=rotation", "-of", "csv=p=0", str(path)).strip()
