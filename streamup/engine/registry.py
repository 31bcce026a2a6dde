"""What the official models are: the manifest shipped in ``weights/models.toml``, read once.

The manifest is data, not code, so that adding a model or correcting a checksum is a one-line change that the
CLI (``streamup models``), the resolver and the downloader all see at once.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

DATA_DIR = Path(str(resources.files("streamup.engine") / "data"))
"""The package's own weights folder: the manifest and the bundled default model (repo ``weights/``)."""


@dataclass(frozen=True)
class ModelInfo:
    """One official model as the release publishes it."""

    name: str
    file: str
    release: str
    url: str
    sha256: str
    size: int
    arch: str
    network: str
    scale: int
    license: str
    description: str
    bundled: bool = False
    x2_sibling: str | None = None
    accepted_sha256: tuple[str, ...] = ()

    def checksum_ok(self, digest: str) -> bool:
        """Whether a file with this SHA-256 is this model: the release file or a known conversion."""
        return digest == self.sha256 or digest in self.accepted_sha256


@cache
def official_models() -> dict[str, ModelInfo]:
    """The manifest, by model name, in manifest order."""
    data = tomllib.loads((DATA_DIR / "models.toml").read_text(encoding="utf-8"))
    models = {}
    for entry in data["model"]:
        entry = dict(entry)
        entry["accepted_sha256"] = tuple(entry.get("accepted_sha256", ()))
        models[entry["name"]] = ModelInfo(**entry)
    return models


def model_info(name: str) -> ModelInfo | None:
    """The official model of that name, or None for a path or an unknown name."""
    return official_models().get(name)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
