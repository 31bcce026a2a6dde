"""What every benchmark shares: the models, the footage, the machine record, and measuring in a child process.

Every timed run happens in a fresh child process (``benchmarks.measure``) so that its peak RSS is that run's
alone and one run's allocator state or loaded models cannot flatter the next; the child reports one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMUP_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights"
MEDIA = SHARED / "media"
RESULTS = REPO / "benchmarks" / "results"
FIDELITY = SHARED / "tools" / "fidelity.py"
PYTHON = sys.executable


@dataclass(frozen=True)
class Model:
    """A benchmarked network: ``name`` as streamup and the official script know it, ``key`` for tables."""

    key: str
    name: str
    scale: int

    @property
    def weights(self) -> Path:
        return WEIGHTS / f"{self.name}.pth"


MODELS = {
    "x4plus": Model("x4plus", "RealESRGAN_x4plus", 4),
    "animevideov3": Model("animevideov3", "realesr-animevideov3", 4),
}


def cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    match = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return set(match.group(1).split()) if match else set()


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare our numbers with theirs: CPU, cores, bf16/AMX, GPU, versions."""
    import psutil
    import torch

    flags = cpu_flags()
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores": psutil.cpu_count(logical=False),
        "cpu_threads": psutil.cpu_count(logical=True),
        "torch_threads": torch.get_num_threads(),
        "memory_bytes": psutil.virtual_memory().total,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] or None,
        "python": platform.python_version(),
    }
    try:
        from streamup.engine import device

        info["streamup_engine"] = device.describe()
    except ImportError as exc:  # the engine is optional for floor.py's FLOP count and peak
        info["streamup_engine"] = f"unavailable: {exc}"
    return info


def machine_line(info: dict[str, Any]) -> str:
    bf16 = "AMX" if info["amx_bf16"] else "AVX512-BF16" if info["avx512_bf16"] else "no native bf16"
    gpu = ", ".join(info["gpu"]) if info["gpu"] else "no GPU"
    return (
        f"{info['cpu_model']} ({info['cpu_cores']} cores, {info['torch_cpu_capability']}, {bf16}), "
        f"{info['memory_bytes'] / 2**30:.0f} GiB, {gpu}; torch {info['torch']}"
    )


def require_device(parser: argparse.ArgumentParser, device: str) -> None:
    """``--device gpu`` on a machine without CUDA is a usage error, not a run of empty cells."""
    import torch

    if device == "gpu" and not torch.cuda.is_available():
        parser.error(f"--device gpu: no CUDA device here (torch {torch.__version__})")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True)


def make_clip(
    src: Path,
    dst: Path,
    *,
    size: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
    frames: int,
    loop: bool = False,
    fps: int | None = None,
    held: int = 1,
) -> Path:
    """Real footage at a benchmark size: ``scale=W:H:flags=lanczos``, then an optional centre crop.

    Written lossless (x264 ``-qp 0``, yuv420p, mp4 so that ``nb_frames`` is in the header, which the official
    script needs) and without audio, so both contenders decode the same pixels and the clip adds no
    generation loss. ``loop`` repeats the clip to reach ``frames``; ``fps`` retimes it (the seed's table is
    for 30 fps video, the footage is 24 fps). ``held`` > 1 makes animation on twos (2) or threes (3): every
    ``held``-th picture, each shown ``held`` times (``framestep``, then ``fps=24``), written as animation is
    delivered (x264 crf 20), so a held picture's repeats differ a little, as they do in real files.
    """
    filters = []
    if size:
        filters.append(f"scale={size[0]}:{size[1]}:flags=lanczos")
    if crop:
        filters.append(f"crop={crop[0]}:{crop[1]}")
    if held > 1:
        filters.append(f"framestep={held},fps=24")
    if fps:
        filters.append(f"setpts=N/({fps}*TB)")
    args = ["-stream_loop", "-1"] if loop else []
    args += ["-i", str(src)]
    if filters:
        args += ["-vf", ",".join(filters)]
    if fps:
        args += ["-r", str(fps)]
    quality = ["-preset", "medium", "-crf", "20"] if held > 1 else ["-preset", "ultrafast", "-qp", "0"]
    args += ["-frames:v", str(frames), "-an", "-c:v", "libx264", *quality]
    args += ["-pix_fmt", "yuv420p", str(dst)]
    ffmpeg(*args)
    return dst


def psnr(a: Path, b: Path) -> float:
    """Average PSNR of two same-size videos by the independent checker (ffmpeg's psnr filter)."""
    out = subprocess.run([PYTHON, str(FIDELITY), "psnr", str(a), str(b)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"fidelity.py psnr failed: {out.stderr.strip()[-300:]}")
    return float(out.stdout.strip())


def measure(kind: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``benchmarks.measure KIND`` in a fresh process and return its JSON report."""
    args = [PYTHON, "-m", "benchmarks.measure", kind]
    for key, value in kwargs.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    env = {**os.environ, "STREAMUP_WEIGHTS_DIR": str(WEIGHTS)}
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args[2:])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class TreeRun:
    """A finished command: wall and CPU time, peak RSS of its whole process tree (ffmpeg children too)."""

    wall_s: float
    cpu_s: float
    peak_tree_rss_bytes: int
    stderr_tail: str


def run_tree(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> TreeRun:
    """Run ``cmd`` to completion, sampling the RSS of it and its descendants every 50 ms.

    The official script decodes and encodes in ffmpeg child processes, so the RSS of the Python process
    alone would flatter it; CPU time comes from RUSAGE_CHILDREN, which includes every waited descendant.
    """
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass  # a child exited between listing and reading; the next sample sees the new tree
            time.sleep(0.05)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read().decode(errors="replace")[-1500:]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {tail}")
    return TreeRun(wall, cpu, peak, tail)


def spread(values: list[float]) -> dict[str, float | int]:
    """min / median / max / n of repeated runs: on a shared machine min is the least disturbed run."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
    }


def scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="streamup-bench-")


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def save_result(stem: Path, result: dict[str, Any], text: str, *, show: str | None = None) -> None:
    """``STEM.json`` (the data) and ``STEM.md`` (its table) in results/, and ``show`` (default: the table)
    on stdout."""
    write_json(stem.with_suffix(".json"), result)
    stem.with_suffix(".md").write_text(text)
    print(text if show is None else show)


def markdown_with_command(lines: list[str], result: dict[str, Any]) -> str:
    """A result's Markdown section: ``lines``, then the command that produced it and when it finished
    (``result["command"]``, ``result["finished_utc"]``), so every table says how to make it again."""
    return "\n".join([*lines, "", f"Command: `{result['command']}` (finished {result['finished_utc']})", ""])


def fmt_seconds(seconds: float | None) -> str:
    """Human duration: 0.83 s, 42 s, 12.5 min, 3.4 h, 2.1 d."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
