"""What can be checked of the container without a container engine: the Dockerfile's inputs exist and reach
the build context, the image runs as a non-root user, and its entrypoint works from an installed wheel."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _ignored(path: str) -> bool:
    """Docker's .dockerignore rules as this file uses them: patterns relative to the context root, ``**``
    for any depth, a match on a directory excludes what is inside it."""
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        options = [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        for prefix in prefixes:
            tail = prefix.split("/")[-1]
            if any(fnmatch.fnmatchcase(prefix, p) for p in options) or (
                    pattern.startswith("**/") and fnmatch.fnmatchcase(tail, pattern[3:])):
                return True
    return False


def test_dockerfile_shape() -> None:
    steps = _instructions()
    kinds = [k for k, _ in steps]
    assert ("ARG", "BASE=python:3.11-slim") in steps and ("FROM", "${BASE}") in steps
    assert dict(steps)["ENTRYPOINT"] == json.dumps(["streamup"])
    users = [v for k, v in steps if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN"), "installs run before USER"
    run = " ".join(v for k, v in steps if k == "RUN")
    assert "torch==2.14.1 torchvision==0.29.1" in run and "pip install ." in run, "the README's install"
    assert "STREAMUP_WEIGHTS_DIR=/weights" in DOCKERFILE


def _copied() -> list[str]:
    return [src for k, v in _instructions() if k == "COPY" for src in v.split()[:-1]]


def test_build_context_holds_what_the_build_copies_and_nothing_heavy() -> None:
    copied = _copied()
    assert copied, "the Dockerfile copies the package"
    for src in copied:
        assert (REPO / src).exists(), f"COPY {src}: missing from the repository"
        assert not _ignored(src), f"COPY {src}: excluded by .dockerignore"
    for inner in ["streamup/storage/s3.py", "streamup/engine/data/models.toml", "weights/models.toml"]:
        assert not _ignored(inner), inner
    for heavy in [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "benchmarks/results/x.json",
                  "streamup/__pycache__/cli.cpython-311.pyc", "clip.mp4", "out/x.mkv"]:
        assert _ignored(heavy), f"{heavy} would be sent to the build"


def test_entrypoint_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    """Copy what the Dockerfile copies, build and install the wheel from it alone, run its ``streamup``."""
    context = tmp_path / "context"
    for src in _copied():
        if (REPO / src).is_dir():
            shutil.copytree(REPO / src, context / src, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(REPO / src, context / src)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"), "."],
                   cwd=context, env=env, check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("streamup-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "streamup/storage/s3.py" in names
    assert any(n.startswith("streamup/engine/data/") and n.endswith(".pth") for n in names), "bundled model"
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   env=env, check=True, capture_output=True)
    script = str(site / "bin" / "streamup")
    run_env = {**env, "PYTHONPATH": str(site)}

    def streamup(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *args], env=run_env, capture_output=True, text=True, cwd=tmp_path)

    top = streamup("--help")
    assert top.returncode == 0 and "upscale" in top.stdout, top.stderr
    sub = streamup("upscale", "--help")
    assert sub.returncode == 0 and "s3://bucket/key" in sub.stdout, sub.stderr
    missing = streamup("upscale", "/nonexistent.mp4", str(tmp_path / "out.mp4"))
    assert missing.returncode == 2 and missing.stderr.startswith("streamup: error: input not found")
