"""``benchmarks/reuse.py --quick`` end to end: real clips made from the shared media, the real default model,
both reuse modes, and the JSON report (a tiny run: two 160x90 clips of 12 frames)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reuse_benchmark_measures_both_modes(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.reuse", "--quick", "--rounds", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "reuse-quick.json").read_text())
    twos, footage = report["clips"]["twos"], report["clips"]["footage"]
    assert twos["frames"] == footage["frames"] == 12
    assert twos["frames_reused_pct"] >= 25 and twos["psnr_worst_db"] >= 45.0  # held drawings reused
    assert twos["flicker_auto"] <= twos["flicker_off"]
    assert footage["frames_reused_pct"] == 0 and footage["psnr_worst_db"] == 100.0  # none to reuse
    assert 0 < footage["decision_share_pct"] < 2.0
    assert (tmp_path / "reuse-quick.md").read_text().startswith("# Reuse of unchanged pictures")
