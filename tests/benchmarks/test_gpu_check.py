"""The prepared GPU check's host-side logic, run for real on the CPU with tiny frames (no GPU in CI).

Everything but the CUDA-only parts (OOM retry, fixtures on CUDA, torch.compile) runs: clip making, parity,
the official-vs-streamup timing (skipped with a reason where the [reference] extra is absent, as in CI),
the end-to-end pipeline against the engine, the gates (recorded, not enforced off a GPU), and the JSON
report. The gates' decision is tested on its own with reports shaped like a full GPU run's.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.gpu_check import GATES, apply_gates, decide

REPO = Path(__file__).resolve().parents[2]

#: The parts of a full GPU report the gates read, with figures of the shape a run writes (s/frame of
#: 1080p frames, x2): both models 5x or more the official script, the pipeline at 82% of the engine.
PASSING: dict[str, Any] = {
    "official_vs_streamup": {
        "animevideov3": {"official_s_per_frame": 0.1840, "streamup_s_per_frame": 0.0262, "ratio": 7.02,
                         "rgb_parity_db": 52.3, "streamup_precision": "fp16", "batch": 4, "tile": 0,
                         "official_precision": "fp16"},
        "x4plus": {"official_s_per_frame": 1.412, "streamup_s_per_frame": 0.271, "ratio": 5.21,
                   "rgb_parity_db": 49.8, "streamup_precision": "fp16", "batch": 4, "tile": 512,
                   "official_precision": "fp16"},
    },
    "end_to_end": {"clip": "48 frames 1920x1080 -> x2", "engine_s_per_frame": 0.0262,
                   "pipeline_s_per_frame": 0.0319, "pipeline_vs_engine_throughput": 0.0262 / 0.0319,
                   "stage_busy_s": {"decode": 0.41, "upscale": 1.26, "encode": 1.37}},
}


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
    gates = report["gates"]
    assert gates["enforced"] is False and [g["name"] for g in gates["results"]] == list(GATES)
    assert "gpu_check: PASS" in proc.stdout


def test_a_report_that_meets_both_targets_passes_every_gate() -> None:
    gates = decide(PASSING)
    assert [(g.name, g.target, g.passed) for g in gates] == [("vs_official", 5.0, True),
                                                             ("pipeline_vs_engine", 0.70, True)]
    assert gates[0].value == 5.21 and "worst model x4plus" in gates[0].detail  # the slowest model decides
    assert gates[1].value == pytest.approx(0.821, abs=1e-3)


@pytest.mark.parametrize(
    ("change", "missed"),
    [
        (lambda r: r["official_vs_streamup"]["x4plus"].update(ratio=4.4), ["vs_official"]),
        (lambda r: r["end_to_end"].update(pipeline_vs_engine_throughput=0.64), ["pipeline_vs_engine"]),
        (lambda r: r.update(official_vs_streamup={"skipped": "the [reference] extra is not installed (x)"}),
         ["vs_official"]),
        (lambda r: r.pop("end_to_end"), ["pipeline_vs_engine"]),
    ],
)
def test_a_missed_or_unmeasured_target_fails_an_enforced_run(change: Any, missed: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    report = copy.deepcopy(PASSING)
    change(report)
    assert apply_gates(report, enforced=True) is False
    assert report["gates"]["missed"] == missed and report["gates"]["enforced"] is True
    printed = capsys.readouterr().out
    assert f"gate {missed[0]}: " in printed and "FAIL" in printed
    result = {g["name"]: g for g in report["gates"]["results"]}
    assert set(result) == set(GATES) and result[missed[0]]["passed"] is False
    if "skipped" in report.get("official_vs_streamup", {}) or "end_to_end" not in report:
        assert result[missed[0]]["value"] is None and "not measured" in result[missed[0]]["detail"]
    json.dumps(report)  # the gates go into the result file as they are


def test_gates_off_a_full_gpu_run_are_recorded_not_enforced() -> None:
    report = copy.deepcopy(PASSING)
    report["official_vs_streamup"]["animevideov3"]["ratio"] = 1.3
    assert apply_gates(report, enforced=False) is True
    assert report["gates"]["missed"] == ["vs_official"] and report["gates"]["enforced"] is False
    assert apply_gates(copy.deepcopy(PASSING), enforced=True) is True
