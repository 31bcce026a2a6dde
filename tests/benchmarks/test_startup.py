"""benchmarks/startup.py measures for real: a short run of the benchmark on 2 frames, read back from its JSON.

The figures themselves depend on the machine; what is checked is that each is measured and consistent: the
phases are all there and positive, the first frame comes before the end, the command's teardown is timed,
the import table names torch, and the result file says its load and command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.startup import PHASES

REPO = Path(__file__).resolve().parents[2]


def test_startup_benchmark_measures_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.startup", "--repeats", "1", "--frames", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert list(result["sides"]) == ["after"] and result["command"].endswith("--repeats 1 --frames 2")
    summary = result["summary"]["after"]
    assert list(summary["phases_wall_s"]) == list(PHASES) == list(summary["phases_cpu_s"])
    assert all(v > 0 for v in summary["phases_wall_s"].values())
    assert summary["phases_cpu_s"]["import_torch"] > summary["phases_cpu_s"]["import_cli"]
    command = result["runs"]["after"]["command"][0]
    assert 0 < command["first_frame_s"] < command["wall_s"] and command["cpu_s"] > 0
    assert 0 <= command["exit_after_output_s"] < command["wall_s"]
    assert "torch" in [entry["package"] for entry in summary["imports"]]
    assert result["load_avg_1m"]["min"] <= result["load_avg_1m"]["max"]
