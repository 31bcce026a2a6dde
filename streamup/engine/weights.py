"""Where a model's weights file comes from: a fixed, explainable resolution order, and a verified download.

Order: an explicit file; ``--weights-dir`` folders, then ``STREAMUP_WEIGHTS_DIR`` (``os.pathsep`` list); the
user cache (``$XDG_CACHE_HOME/streamup/weights``); the weights bundled in the package; else a download of the
official release file into the cache. A job never half-uses a download: the file is hashed while it streams,
checked against the manifest and only then renamed into place, so the cache holds verified files or nothing.
``STREAMUP_OFFLINE=1`` forbids the download (air-gapped workers fail fast with the fetch command instead).
``STREAMUP_WEIGHTS_MIRROR`` replaces the release base URL (``<mirror>/<release>/<file>``): internal mirrors.
Those variables arrive read, as a ``streamup.config.Config`` the caller passes in; this module never looks
at the environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streamup.config import Config
from streamup.engine.registry import DATA_DIR, ModelInfo, model_info, official_models, sha256_of
from streamup.errors import ModelError


@dataclass(frozen=True)
class ModelStatus:
    """Where a model resolves on this machine, for ``streamup models``.

    ``path`` is None when no local copy exists (it would be downloaded on first use); ``sha_ok`` is None then,
    else whether the file's checksum is the official one or an accepted conversion; ``source`` says which
    step of the resolution order found it (``weights-dir``, ``cache``, ``bundled``).
    """

    name: str
    scale: int
    arch: str
    path: Path | None
    sha_ok: bool | None
    source: str | None
    size: int
    description: str


DOWNLOAD_TIMEOUT_S = 30.0
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")


def search_dirs(weights_dirs: Sequence[str | Path], *, config: Config) -> list[tuple[Path, str]]:
    """The folders searched for a named model, in order, each with the name of its step."""
    dirs = [(Path(d).expanduser(), "weights-dir") for d in (*weights_dirs, *config.weights_dirs)]
    dirs.append((config.weights_cache, "cache"))
    dirs.append((DATA_DIR, "bundled"))
    return dirs


def find_local(name: str, weights_dirs: Sequence[str | Path], *, config: Config) -> tuple[Path, str] | None:
    """The first local copy of an official model and the step that found it; never downloads."""
    info = model_info(name)
    if info is None:
        return None
    for folder, source in search_dirs(weights_dirs, config=config):
        candidate = folder / info.file
        if candidate.is_file():
            return candidate, source
    return None


def is_path_like(model: str) -> bool:
    """A model argument names a file (rather than an official model) when it looks like one."""
    return os.sep in model or "/" in model or model.lower().endswith(MODEL_SUFFIXES)


def resolve(model: str, weights_dirs: Sequence[str | Path], *, config: Config) -> Path:
    """The weights file for a model name or path, downloading an official model if nothing local has it."""
    if is_path_like(model):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path
    info = model_info(model)
    if info is None:
        names = ", ".join(official_models())
        raise ModelError(f"unknown model {model!r}: not a file and not one of {names} (or lanczos)")
    found = find_local(model, weights_dirs, config=config)
    if found:
        return found[0]
    if config.offline:
        raise _not_found(info, weights_dirs, config, "not downloaded: STREAMUP_OFFLINE is set")
    try:
        return download(model, config=config)
    except ModelError as exc:
        raise _not_found(info, weights_dirs, config, f"download failed: {exc}") from exc


def _not_found(info: ModelInfo, weights_dirs: Sequence[str | Path], config: Config, why: str) -> ModelError:
    looked = ", ".join(str(d) for d, _ in search_dirs(weights_dirs, config=config))
    return ModelError(
        f"model {info.name} ({info.file}) not found in {looked}; {why}; "
        f"fetch it with `streamup models download {info.name}`"
    )


def download_url(info: ModelInfo, mirror: str) -> str:
    """Where the release file is fetched from: ``mirror`` (``STREAMUP_WEIGHTS_MIRROR``) or GitHub."""
    return f"{mirror}/{info.release}/{info.file}" if mirror else info.url


def download(name: str, dest: Path | None = None, *, config: Config, progress: bool = True) -> Path:
    """Fetch an official model into the cache (or ``dest``), verified by SHA-256, renamed into place.

    A checksum mismatch or a broken connection leaves nothing behind: the bytes go to a temporary file in the
    destination folder (same file system, so the final rename is atomic) that is removed on any failure.
    """
    info = model_info(name)
    if info is None:
        raise ModelError(f"unknown model {name!r}: one of {', '.join(official_models())}")
    folder = dest or config.weights_cache
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / info.file
    if target.is_file() and info.checksum_ok(sha256_of(target)):
        return target  # already there and verified: downloading again would only cost time
    url = download_url(info, config.weights_mirror)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{info.file}.", suffix=".partial", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, info, progress)
        if not info.checksum_ok(digest):
            raise ModelError(f"{url}: SHA-256 {digest} does not match {info.name}'s {info.sha256}")
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def _stream(url: str, out, info: ModelInfo, progress: bool) -> str:
    from tqdm import tqdm

    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or info.size)
        with tqdm(
            total=total, unit="B", unit_scale=True, desc=info.file, disable=not progress, file=sys.stderr
        ) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def list_models(weights_dirs: Sequence[str | Path], *, config: Config) -> list[ModelStatus]:
    """Every official model, its scale, and where it resolves without downloading anything."""
    statuses = []
    for info in official_models().values():
        found = find_local(info.name, weights_dirs, config=config)
        path, source = found if found else (None, None)
        statuses.append(
            ModelStatus(
                name=info.name,
                scale=info.scale,
                arch=info.arch,
                path=path,
                sha_ok=info.checksum_ok(sha256_of(path)) if path else None,
                source=source,
                size=info.size,
                description=info.description,
            )
        )
    return statuses
