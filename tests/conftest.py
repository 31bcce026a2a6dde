"""Fixtures every test area shares: where the shared clips and weights are, and a clean environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STREAMUP_SHARED", REPO.parent / "shared"))
MEDIA = SHARED / "media"
SHARED_WEIGHTS = SHARED / "weights"


def media(name: str) -> Path:
    """Path of a clip in ../shared/media; the test fails (not skips) when the shared set is missing."""
    path = MEDIA / name
    assert path.exists(), f"shared clip missing: {path} (tests need ../shared beside the repo)"
    return path


@pytest.fixture(scope="session")
def manifest() -> dict:
    """The measured facts of every shared clip (../shared/media/manifest.json)."""
    return json.loads((MEDIA / "manifest.json").read_text())


@pytest.fixture(autouse=True)
def _weights_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point weight resolution at ../shared/weights and give each test an empty user cache: no downloads."""
    monkeypatch.setenv("STREAMUP_WEIGHTS_DIR", str(SHARED_WEIGHTS))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
