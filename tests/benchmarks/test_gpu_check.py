"""The prepared GPU check's host-side logic, run for real on the CPU with tiny frames (no GPU in CI).

Everything but the CUDA-only parts (OOM retry, fixtures on CUDA, torch.compile) runs: clip making, parity,
the official-vs-streamup timing (skipped with a reason where the [reference] extra is absent, as in CI),
the end-to-end pipeline against the engine, and the JSON report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_runs_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["ok"] is True
    parity = report["parity"]
    assert parity and all(value >= 45.0 for value in parity.values())
    assert report["oom"] == {"skipped": "needs CUDA"}
    e2e = report["end_to_end"]
    assert e2e["engine_s_per_frame"] > 0 and e2e["pipeline_s_per_frame"] > 0
    assert set(e2e["stage_busy_s"]) >= {"decode", "upscale", "encode"}
    official = report["official_vs_streamup"]
    if "skipped" in official:
        assert "[reference]" in official["skipped"]
    else:
        entry = official["animevideov3"]
        assert entry["ratio"] > 0 and entry["rgb_parity_db"] >= 45.0
    assert "gpu_check: PASS" in proc.stdout
