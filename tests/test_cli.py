"""The ``streamup`` command as scripts see it: exit codes, one-line errors, signals, tiers, doctor, models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streamup.cli import _parser, options_from_args
from streamup.config import Config
from streamup.errors import UsageError
from streamup.tiers import get_tier
from tests.conftest import REPO, SHARED_WEIGHTS, media
from tests.media import probe


def streamup_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamup", *args]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(streamup_cmd(*args), capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=300)


def _error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("streamup: error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_upscale_with_json_logs(tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    source = str(media("sr_input_x4_160x90.mkv"))
    done = run("upscale", source, str(out), "--model", "lanczos", "--scale", "4", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    progress = [r for r in records if "percent" in r]
    assert len(progress) >= 10 and progress[-1]["percent"] == 100.0 and progress[-1]["fps"] > 0
    final = records[-1]
    assert final["event"] == "done" and final["frames"] == 48 and final["model"] == "lanczos"
    v = probe.video(out)
    assert (v["width"], v["height"]) == (640, 360)


def test_text_progress_is_a_line_every_five_percent(tmp_path: Path) -> None:
    done = run("upscale", str(media("sr_input_x4_160x90.mkv")), str(tmp_path / "o.mp4"), "--model", "lanczos")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    percents = [int(line.split()[2].rstrip("%")) for line in lines if line.startswith("streamup: info: ") and
                "%" in line]
    assert percents == sorted(percents) and percents[-1] == 100
    assert 10 <= len(percents) <= 21  # 48 frames in batches of 4: at most one line per 5 % step
    assert "fps" in lines[0] and "eta" in lines[0]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("bad_empty.mp4", 2),
        ("bad_text.mp4", 2),
        ("bad_truncated_40pct_faststart.mp4", 2),  # fails mid-run, after output was started
        ("bad_truncated_40pct_moov_at_end.mp4", 2),
        ("audio_only_aac.m4a", 2),
        ("still_640x360.png", 2),
        ("does-not-exist.mp4", 2),
    ],
)
def test_bad_input_is_one_line_and_no_output(tmp_path: Path, name: str, code: int) -> None:
    source = media(name) if name != "does-not-exist.mp4" else tmp_path / name
    out = tmp_path / "out" / "x.mp4"
    out.parent.mkdir()
    done = run("upscale", str(source), str(out), "--model", "lanczos", "--no-progress")
    assert done.returncode == code
    _error_line(done.stderr)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["upscale", "IN", "/nonexistent-dir/out.mp4"], 1, "output directory does not exist"),
        (["upscale", "IN", "OUT.mp4", "--scale", "3"], 2, "invalid choice"),
        (["upscale", "IN"], 2, "required"),
        (["upscale", "IN", "OUT.avi"], 2, "unsupported output extension"),
        (["upscale", "IN", "OUT.mp4", "--tier", "gold"], 2, "invalid choice"),
        (["upscale", "IN", "OUT.mp4", "--crf", "99"], 2, "out of range for libx264"),
        (["upscale", "IN", "OUT.mp4", "--preset", "warp9"], 2, "unknown --preset 'warp9' for libx264"),
        (["upscale", "IN", "OUT.mkv", "--codec", "nosuchcodec"], 2, "codec 'nosuchcodec' cannot be used"),
        (["upscale", "IN", "OUT.mp4", "--model", "nosuchmodel"], 2, "unknown model"),
        (["upscale", "IN", "OUT.mp4", "--backend", "lanczos", "--model", "RealESRGAN_x4plus"], 2,
         "backend lanczos does not run model 'RealESRGAN_x4plus'"),
        (["upscale", "IN", "OUT.mp4", "--backend", "tensorrt"], 2, "invalid choice"),
        (["upscale", "IN", "OUT.mp4", "--lanes", "0"], 2, "lanes must be a whole number of at least 1"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_usage_and_output_errors(tmp_path: Path, args: list[str], code: int, words: str) -> None:
    args = [str(media("sr_input_x4_160x90.mkv")) if a == "IN" else str(tmp_path / a) if a.startswith("OUT")
            else a for a in args]
    done = run(*args, "--no-progress") if args[0] == "upscale" and len(args) > 2 else run(*args)
    assert done.returncode == code, done.stderr
    assert words in _error_line(done.stderr)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_stops_and_leaves_no_output(tmp_path: Path, signum: int, code: int) -> None:
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        streamup_cmd("upscale", str(media("noaudio_h264.mp4")), str(out), "--model", "lanczos",
                     "--log-format", "json"),
        stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert proc.stderr is not None
    first = json.loads(proc.stderr.readline())  # the run is under way: a progress line came out
    assert first["frames"] > 0
    proc.send_signal(signum)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == code
    assert "streamup: error: cancelled" in _error_line("\n".join(
        line for line in rest.splitlines() if not line.startswith("{")))
    assert list(tmp_path.iterdir()) == []


def test_tier_table_and_explicit_flags() -> None:
    cfg = Config()
    parse = _parser(cfg).parse_args
    basic = options_from_args(parse(["upscale", "i.mp4", "o.mp4", "--tier", "basic"]), cfg)
    assert (basic.device, basic.scale, basic.model) == ("cpu", 2, "realesr-animevideov3")
    pro_args = ["upscale", "i", "o.mp4", "--tier", "pro", "--scale", "2", "--tile", "128"]
    pro = options_from_args(parse(pro_args), cfg)
    assert (pro.device, pro.scale, pro.tile, pro.model) == ("gpu", 2, 128, "RealESRGAN_x4plus")
    plain = options_from_args(parse(["upscale", "i.mp4", "o.mp4", "--backend", "lanczos"]), cfg)
    assert (plain.scale, plain.backend, plain.model) == (2, "lanczos", None)


def test_the_environment_read_once_sets_tiers_and_metric_defaults() -> None:
    cfg = Config.from_environ({"STREAMUP_TIER_BASIC_MODEL": "RealESRGAN_x4plus_anime_6B",
                               "STREAMUP_TIER_STANDARD_TILE": "256", "STREAMUP_METRICS_PORT": "9401",
                               "STREAMUP_METRICS_LINGER": "3", "STREAMUP_PUSHGATEWAY": "http://127.0.0.1:9091"})
    args = _parser(cfg).parse_args(["upscale", "i.mp4", "o.mp4", "--tier", "basic"])
    assert (args.metrics_port, args.metrics_linger, args.pushgateway) == (9401, 3.0, "http://127.0.0.1:9091")
    assert options_from_args(args, cfg).model == "RealESRGAN_x4plus_anime_6B"
    assert get_tier("standard", cfg).tile == 256
    with pytest.raises(UsageError, match="STREAMUP_TIER_PRO_SCALE"):
        get_tier("pro", Config.from_environ({"STREAMUP_TIER_PRO_SCALE": "four"}))


def test_a_bad_environment_variable_is_one_line(tmp_path: Path) -> None:
    done = run("upscale", str(media("sr_input_x4_160x90.mkv")), str(tmp_path / "o.mp4"),
               env={"STREAMUP_METRICS_PORT": "soon"})
    assert done.returncode == 2
    assert "STREAMUP_METRICS_PORT must be a number, got 'soon'" in _error_line(done.stderr)
    assert list(tmp_path.iterdir()) == []


def test_an_operators_tier_limit_binds_the_cli_and_a_user_has_none_without_one(tmp_path: Path) -> None:
    """The tier table's 8K default is the worker's; the CLI applies only limits an operator set, from the
    source's header, before any work: a refused file is one line, exit 2, nothing written; in a folder run it
    fails alone."""
    source = str(media("sr_input_x4_160x90.mkv"))  # at 2x: 320x180 = 57,600 pixels
    limit = {"STREAMUP_TIER_BASIC_MAX_PIXELS": "57599"}
    refused = run("upscale", source, str(tmp_path / "o.mkv"), "--tier", "basic", "--model", "lanczos",
                  env=limit)
    assert refused.returncode == 2
    assert "above tier basic's limit of 57599 pixels (limit: STREAMUP_TIER_BASIC_MAX_PIXELS)" in \
        _error_line(refused.stderr)
    assert list(tmp_path.iterdir()) == []
    folder = tmp_path / "many"
    small = str(media("sr_input_x2_320x180.mkv"))  # at 2x: 640x360 = 230,400 pixels, over 100,000
    several = run("upscale", source, small, f"{folder}/", "--tier", "basic", "--model", "lanczos",
                  "--no-progress", env={"STREAMUP_TIER_BASIC_MAX_PIXELS": "100000"})
    assert several.returncode == 1
    assert sorted(p.name for p in folder.iterdir()) == ["sr_input_x4_160x90.mkv"]
    assert "limit of 100000 pixels" in several.stderr
    free = run("upscale", source, str(tmp_path / "o.mkv"), "--tier", "basic", "--model", "lanczos",
               env={"STREAMUP_TIER_BASIC_MAX_PIXELS": ""})  # an empty value lifts it
    assert free.returncode == 0, free.stderr


def test_backend_lanczos_alone_is_the_preview(tmp_path: Path) -> None:
    out = tmp_path / "o.mkv"
    done = run("upscale", str(media("sr_input_x4_160x90.mkv")), str(out), "--backend", "lanczos",
               "--log-format", "json")
    assert done.returncode == 0, done.stderr
    final = json.loads(done.stderr.splitlines()[-1])
    assert (final["frames"], final["model"], final["scale"]) == (48, "lanczos", 2)
    v = probe.video(out)
    assert (v["width"], v["height"]) == (320, 180)


def test_doctor_passes_here_and_fails_on_corrupt_weights(tmp_path: Path) -> None:
    ok = run("doctor")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok   encoder libx264" in ok.stdout and "ok   model realesr-animevideov3" in ok.stdout
    bad_dir = tmp_path / "weights"
    bad_dir.mkdir()
    (bad_dir / "realesr-animevideov3.pth").write_bytes(b"not a model")
    bad = run("doctor", env={"STREAMUP_WEIGHTS_DIR": str(bad_dir)})
    assert bad.returncode == 1
    assert "CHECKSUM MISMATCH" in bad.stdout
    assert "model realesr-animevideov3" in _error_line(bad.stderr)


def test_models_lists_what_is_present() -> None:
    done = run("models", env={"STREAMUP_WEIGHTS_DIR": str(SHARED_WEIGHTS)})
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "checksum ok" in lines["RealESRGAN_x4plus"] and "x4" in lines["RealESRGAN_x4plus"]
    assert "not downloaded" in lines["RealESRGAN_x2plus"]
