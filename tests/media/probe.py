"""ffprobe/ffmpeg as the independent checker for media tests: none of streamup's code is used to judge it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType

from tests.conftest import SHARED


def ffprobe(*args: str) -> dict:
    argv = ["ffprobe", "-v", "error", "-of", "json", *args]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "{}")


def streams(path: Path) -> list[dict]:
    return ffprobe("-show_streams", str(path))["streams"]


def video(path: Path) -> dict:
    return next(s for s in streams(path) if s["codec_type"] == "video")


def frame_times(path: Path) -> list[float]:
    data = ffprobe("-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time", str(path))
    return sorted(float(f["best_effort_timestamp_time"]) for f in data["frames"])


def packets(path: Path, selector: str) -> list[dict]:
    """Packets of one stream (``a:0``, ``s:0``) with pts and an MD5 of the payload."""
    data = ffprobe("-select_streams", selector, "-show_packets", "-show_data_hash", "MD5", str(path))
    return data["packets"]


def duration(path: Path) -> float:
    return float(ffprobe("-show_format", str(path))["format"]["duration"])


def fidelity() -> ModuleType:
    """The shared independent checker ../shared/tools/fidelity.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("fidelity", SHARED / "tools" / "fidelity.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rgb_frame(path: Path, index: int, size: tuple[int, int]) -> bytes:
    """Frame ``index`` decoded and converted to RGB by ffmpeg itself (honouring the file's colour tags)."""
    w, h = size
    graph = f"select=eq(n\\,{index}),scale={w}:{h}:flags=area,format=rgb24"
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vf", graph, "-frames:v", "1",
            "-f", "rawvideo", "-"]
    out = subprocess.run(argv, capture_output=True, check=True)
    assert len(out.stdout) == w * h * 3
    return out.stdout
