"""``streamup upscale IN... OUTDIR/``: many files in one command, one model load, a summary, resumable.

The command is run as scripts run it (a real ``streamup`` process on real clips, ``--model lanczos`` for
speed); the one-model-load promise is counted twice: by the command's own log records, and in-process by a
real builder that counts its calls. Outputs are checked by the independent checker (``fidelity.py``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from streamup import many, metrics
from streamup.engine.base import FrameUpscaler
from streamup.errors import Cancelled, UsageError
from streamup.observe import JobRef
from streamup.options import UpscaleOptions
from streamup.pipeline import build_upscaler
from tests.conftest import REPO, SHARED, media
from tests.metrics.servers import free_port
from tests.test_cli import run, streamup_cmd

FIDELITY = SHARED / "tools" / "fidelity.py"
LANCZOS = ("--model", "lanczos", "--scale", "2")


def records(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def events(stderr: str, name: str) -> list[dict]:
    return [r for r in records(stderr) if r.get("event") == name]


def faithful(source: Path, output: Path) -> None:
    command = [sys.executable, str(FIDELITY), "compare", str(source), str(output), "--scale", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def episodes(tmp_path: Path) -> list[Path]:
    """Three real clips in a folder: an FFV1 .mkv, an H.264+AAC .mp4 and a Matroska file named ``.AVI``
    (a container streamup does not write: its output becomes ``.mkv``)."""
    folder = tmp_path / "in"
    folder.mkdir()
    clips = [folder / "ep1.mkv", folder / "ep2.mp4", folder / "ep3.AVI"]
    shutil.copy(media("sr_input_x4_160x90.mkv"), clips[0])
    shutil.copy(media("faststart.mp4"), clips[1])
    shutil.copy(media("sr_input_x4_160x90.mkv"), clips[2])
    return clips


def test_outputs_are_named_after_the_inputs_faithful_and_the_model_loads_once(
    tmp_path: Path, episodes: list[Path]
) -> None:
    out = tmp_path / "out"
    done = run("upscale", *map(str, episodes), f"{out}/", *LANCZOS, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ep1.mkv", "ep2.mp4", "ep3.mkv"]
    for source, name in zip(episodes, ["ep1.mkv", "ep2.mp4", "ep3.mkv"], strict=True):
        faithful(source, out / name)
    assert len(events(done.stderr, "model_loaded")) == 1
    assert [r["output"] for r in events(done.stderr, "done")] == [str(out / n) for n in
                                                                 ("ep1.mkv", "ep2.mp4", "ep3.mkv")]
    summary = events(done.stderr, "summary")
    assert len(summary) == 1
    assert summary[0]["done"] == [{"input": str(s), "output": str(out / n)} for s, n in
                                  zip(episodes, ["ep1.mkv", "ep2.mp4", "ep3.mkv"], strict=True)]
    assert summary[0]["skipped"] == [] and summary[0]["failed"] == []


def test_existing_outputs_are_skipped_so_a_folder_run_resumes(tmp_path: Path, episodes: list[Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "ep2.mp4").write_bytes(b"finished earlier")  # an existing output is never rebuilt or replaced
    done = run("upscale", *map(str, episodes), str(out), *LANCZOS, "--log-format", "json", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert (out / "ep2.mp4").read_bytes() == b"finished earlier"
    summary = events(done.stderr, "summary")[0]
    assert [d["output"] for d in summary["done"]] == [str(out / "ep1.mkv"), str(out / "ep3.mkv")]
    assert summary["skipped"] == [{"input": str(episodes[1]), "output": str(out / "ep2.mp4")}]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    again = run("upscale", *map(str, episodes), str(out), *LANCZOS, "--log-format", "json", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert len(events(again.stderr, "skipped")) == 3
    assert events(again.stderr, "model_loaded") == []  # nothing to do: no model is loaded for it
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_a_bad_file_fails_alone_and_the_run_exits_1_with_the_reasons(tmp_path: Path,
                                                                     episodes: list[Path]) -> None:
    out = tmp_path / "out"
    bad = [media("bad_text.mp4"), media("bad_truncated_40pct_faststart.mp4")]  # the second fails mid-run
    inputs = [episodes[0], *bad, episodes[1]]
    done = run("upscale", *map(str, inputs), f"{out}/", *LANCZOS, "--no-progress")
    assert done.returncode == 1, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ep1.mkv", "ep2.mp4"]  # nothing half-written
    faithful(episodes[1], out / "ep2.mp4")
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("streamup: error: 4 files: 2 done, 0 skipped (output exists), 2 failed; ")
    assert f"{bad[0]}: not a readable video" in last and f"{bad[1]}: " in last
    assert "Traceback" not in done.stderr

    as_json = run("upscale", *map(str, inputs), f"{out}/", *LANCZOS, "--no-progress", "--log-format", "json")
    assert as_json.returncode == 1
    summary = events(as_json.stderr, "summary")[0]
    assert [f["input"] for f in summary["failed"]] == list(map(str, bad))
    assert all(f["error"] and "\n" not in f["error"] for f in summary["failed"])
    assert len(summary["skipped"]) == 2


def test_ctrl_c_stops_the_whole_run_and_leaves_no_partial_output(tmp_path: Path,
                                                                 episodes: list[Path]) -> None:
    out = tmp_path / "out"
    long_clip = media("noaudio_h264.mp4")  # 250 frames: seconds of work to interrupt
    proc = subprocess.Popen(
        streamup_cmd("upscale", str(episodes[0]), str(long_clip), str(episodes[1]), f"{out}/", *LANCZOS,
                     "--log-format", "json"),
        stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stderr is not None
    while json.loads(proc.stderr.readline()).get("event") != "done":
        pass  # the first file is finished
    while "percent" not in json.loads(proc.stderr.readline()):
        pass  # the second one is under way
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    assert sorted(p.name for p in out.iterdir()) == ["ep1.mkv"]
    summary = events(rest, "summary")[0]
    assert len(summary["done"]) == 1 and summary["failed"] == []
    assert rest.strip().splitlines()[-1].startswith("streamup: error: cancelled")


def test_metrics_count_each_file_as_a_job_of_its_own(tmp_path: Path, episodes: list[Path]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        streamup_cmd("upscale", str(episodes[0]), str(media("bad_text.mp4")), str(episodes[2]),
                     f"{tmp_path}/o/", *LANCZOS, "--log-format", "json", "--no-progress",
                     "--metrics-port", str(port), "--metrics-linger", "120"),
        stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stderr is not None
    while json.loads(proc.stderr.readline()).get("event") != "summary":
        pass  # every file has run; /metrics lingers for a last scrape
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        exposition = response.read().decode()
    proc.send_signal(signal.SIGINT)  # ends the linger; the run's own outcome stands
    proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines()
               if line.startswith("streamup_jobs_total{")}
    assert samples['streamup_jobs_total{device="auto",status="succeeded",tier="none"}'] == 2.0
    assert samples['streamup_jobs_total{device="auto",status="failed",tier="none"}'] == 1.0


def test_usage_errors_come_before_any_work(tmp_path: Path, episodes: list[Path]) -> None:
    same_stem = tmp_path / "other" / "ep1.mkv"
    same_stem.parent.mkdir()
    shutil.copy(episodes[0], same_stem)
    out = tmp_path / "out"
    clash = run("upscale", str(episodes[0]), str(same_stem), f"{out}/", *LANCZOS, "--no-progress")
    assert clash.returncode == 2
    assert clash.stderr.strip() == f"streamup: error: {episodes[0]} and {same_stem} would both write " \
                                   f"{out}/ep1.mkv"
    segmented = run("upscale", str(episodes[0]), str(episodes[1]), f"{out}/", *LANCZOS,
                    "--segment-seconds", "1")
    assert segmented.returncode == 2 and "--segment-seconds takes one INPUT" in segmented.stderr
    assert not out.exists()
    a_file = tmp_path / "taken.mp4"
    a_file.write_bytes(b"not a folder")
    onto_a_file = run("upscale", str(episodes[0]), str(episodes[1]), str(a_file), *LANCZOS)
    assert onto_a_file.returncode == 2
    expected = f"streamup: error: OUTPUT must be a folder for several inputs, and {a_file} is a file"
    assert onto_a_file.stderr.strip() == expected
    assert a_file.read_bytes() == b"not a folder"


def test_one_input_into_a_folder_is_a_run_of_one(tmp_path: Path, episodes: list[Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    done = run("upscale", str(episodes[0]), str(out), *LANCZOS, "--no-progress")
    assert done.returncode == 0, done.stderr
    faithful(episodes[0], out / "ep1.mkv")
    assert "1 files: 1 done, 0 skipped (output exists), 0 failed" in done.stderr


def test_in_process_the_upscaler_is_built_once_and_each_file_is_a_job_of_its_own(
    tmp_path: Path, episodes: list[Path]
) -> None:
    built: list[str] = []

    def counting_build(options: UpscaleOptions) -> FrameUpscaler:
        built.append(options.model or "")
        return build_upscaler(options)

    observer = metrics.process_metrics()
    options = UpscaleOptions(scale=2, model="lanczos")
    inputs = [str(episodes[0]), str(media("bad_text.mp4")), str(episodes[2])]
    summary = many.run(inputs, str(tmp_path / "out"), options, job=JobRef("out", "none", "auto"),
                       observers=[observer], build=counting_build)
    assert built == ["lanczos"]
    assert [o for _i, o in summary.done] == [str(tmp_path / "out" / n) for n in ("ep1.mkv", "ep3.mkv")]
    assert summary.exit_code == 1 and summary.failed[0][0] == inputs[1]
    jobs = {status: observer.registry.get_sample_value(
        "streamup_jobs_total", {"tier": "none", "device": "auto", "status": status})
        for status in ("succeeded", "failed")}
    assert jobs == {"succeeded": 2.0, "failed": 1.0}
    frames = observer.registry.get_sample_value("streamup_frames_total", {"stage": "encode"})
    assert frames == 96.0  # 48 + 48: each file counted once, the failed one not at all

    again = many.run(inputs[::2], str(tmp_path / "out"), options, job=JobRef("out", "none", "auto"),
                     build=counting_build)
    assert built == ["lanczos"] and len(again.skipped) == 2 and again.exit_code == 0


def test_a_set_cancel_event_raises_cancelled_before_the_next_file(tmp_path: Path,
                                                                 episodes: list[Path]) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        many.run([str(episodes[0])], str(tmp_path / "out"), UpscaleOptions(model="lanczos"),
                 job=JobRef("out", "none", "auto"), cancel=cancel)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("source", "outdir", "expected"),
    [
        ("videos/ep1.mp4", "out/", "out/ep1.mp4"),
        ("/a/b/Clip.Final.MOV", "/out", "/out/Clip.Final.mov"),
        ("show.avi", "s3://bucket/done/", "s3://bucket/done/show.mkv"),
        ("s3://bucket/in/ep.webm", "out", "out/ep.webm"),
        ("https://host/media/ep.m4v?token=x.mp4", "out", "out/ep.mkv"),
        ("noext", "out", "out/noext.mkv"),
    ],
)
def test_output_names(source: str, outdir: str, expected: str) -> None:
    assert many.output_for(source, outdir) == expected


def test_what_counts_as_many(tmp_path: Path) -> None:
    assert not many.is_many(["a.mp4"], str(tmp_path / "b.mp4"))
    assert many.is_many(["a.mp4"], str(tmp_path))  # an existing folder
    assert many.is_many(["a.mp4"], "s3://bucket/prefix/")
    assert many.is_many(["a.mp4", "b.mp4"], "out")
    with pytest.raises(UsageError, match="cannot name an output"):
        many.output_for("https://host/", "out")
