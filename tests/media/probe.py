"""ffprobe/ffmpeg as the independent checker for media tests: none of streamup's code is used to judge it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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


def fidelity_checks(source: Path, output: Path, scale: int) -> dict[str, dict]:
    """``fidelity.py compare --json`` run as its own process: {check: {"ok": bool, "detail": str}}."""
    argv = [sys.executable, str(SHARED / "tools" / "fidelity.py"), "compare", str(source), str(output),
            "--scale", str(scale), "--json"]
    run = subprocess.run(argv, capture_output=True, text=True)
    assert run.stdout, run.stderr
    return json.loads(run.stdout)


def failed(checks: dict[str, dict]) -> dict[str, str]:
    """The checks that did not pass, with fidelity.py's explanation."""
    return {k: v["detail"] for k, v in checks.items() if not v["ok"]}


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


def frame_md5s(path: Path) -> list[str]:
    """MD5 of every decoded video frame, by ffmpeg's framemd5 muxer: equal lists mean identical pictures."""
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]
