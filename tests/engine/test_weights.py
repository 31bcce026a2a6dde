"""Weights resolution order, the verified atomic download (from a real local HTTP server), offline errors.

Each test states its settings as a ``Config`` (what a face reads from the environment once), so nothing here
depends on the process environment.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamup.config import Config
from streamup.engine import registry, weights
from streamup.errors import ModelError
from tests.conftest import SHARED_WEIGHTS

NAME = "realesr-animevideov3"
FILE = "realesr-animevideov3.pth"


def _place(folder: Path, name: str = FILE, source: Path = SHARED_WEIGHTS / FILE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(source, folder / name))


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """No weights folder from the environment and an empty cache of the test's own."""
    return Config(weights_cache=tmp_path / "cache")


def test_resolution_order(tmp_path: Path, cfg: Config) -> None:
    flag, env1, env2 = tmp_path / "flag", tmp_path / "env1", tmp_path / "env2"
    cfg = dataclasses.replace(cfg, weights_dirs=(env1, env2))  # STREAMUP_WEIGHTS_DIR=env1:env2
    cache = _place(cfg.weights_cache)
    in_env2 = _place(env2)
    in_flag = _place(flag)
    explicit = _place(tmp_path / "elsewhere", "mine.pth")

    assert weights.resolve(str(explicit), [flag], config=cfg) == explicit
    assert weights.resolve(NAME, [flag], config=cfg) == in_flag
    assert weights.find_local(NAME, [flag], config=cfg) == (in_flag, "weights-dir")
    in_flag.unlink()
    assert weights.find_local(NAME, [flag], config=cfg) == (in_env2, "weights-dir")
    in_env2.unlink()
    assert weights.find_local(NAME, [flag], config=cfg) == (cache, "cache")
    cache.unlink()
    path, source = weights.find_local(NAME, [flag], config=cfg) or (None, None)
    assert source == "bundled" and path == registry.DATA_DIR / FILE and path.stat().st_size > 1_000_000


def test_bundled_model_is_the_accepted_conversion() -> None:
    info = registry.model_info(NAME)
    assert info and info.bundled
    assert info.checksum_ok(registry.sha256_of(registry.DATA_DIR / FILE))


def test_list_models_reports_where_and_whether_verified(tmp_path: Path, cfg: Config) -> None:
    fake = _place(tmp_path / "mine", "RealESRGAN_x4plus.pth")  # the compact file under the x4plus name
    cfg = dataclasses.replace(cfg, weights_dirs=(SHARED_WEIGHTS,))
    statuses = {s.name: s for s in weights.list_models([fake.parent], config=cfg)}
    assert set(statuses) == {
        "realesr-animevideov3",
        "RealESRGAN_x4plus",
        "RealESRGAN_x2plus",
        "RealESRGAN_x4plus_anime_6B",
        "realesr-general-x4v3",
    }
    assert (statuses["RealESRGAN_x4plus"].path, statuses["RealESRGAN_x4plus"].sha_ok) == (fake, False)
    anime = statuses["RealESRGAN_x4plus_anime_6B"]
    assert (anime.path, anime.source, anime.sha_ok) == (SHARED_WEIGHTS / anime.path.name, "weights-dir", True)
    assert (statuses["RealESRGAN_x2plus"].path, statuses["RealESRGAN_x2plus"].sha_ok) == (None, None)
    assert statuses["RealESRGAN_x2plus"].scale == 2


def test_offline_and_missing_names_where_it_looked_and_the_fetch_command(tmp_path: Path, cfg: Config) -> None:
    cfg = dataclasses.replace(cfg, weights_dirs=(tmp_path / "empty",), offline=True)
    with pytest.raises(ModelError) as exc:
        weights.resolve("RealESRGAN_x4plus", [], config=cfg)
    message = str(exc.value)
    assert "\n" not in message and "STREAMUP_OFFLINE is set" in message
    assert str(tmp_path / "empty") in message and str(cfg.weights_cache) in message
    assert "`streamup models download RealESRGAN_x4plus`" in message


@pytest.fixture
def mirror(tmp_path: Path, cfg: Config) -> Iterator[tuple[Path, Config]]:
    """A real HTTP server on 127.0.0.1 serving a folder laid out like the release (<tag>/<file>), and the
    settings that download from it (``STREAMUP_WEIGHTS_MIRROR``) with no local weights."""
    root = tmp_path / "mirror"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, dataclasses.replace(cfg, weights_mirror=f"http://127.0.0.1:{server.server_address[1]}",
                                    weights_dirs=(tmp_path / "empty",))
    server.shutdown()
    server.server_close()


def test_resolve_downloads_verifies_and_renames_into_the_cache(mirror: tuple[Path, Config]) -> None:
    root, cfg = mirror
    name, file = "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x4plus_anime_6B.pth"
    _place(root / "v0.2.2.4", file, SHARED_WEIGHTS / file)
    path = weights.resolve(name, [], config=cfg)
    assert path == cfg.weights_cache / file
    assert path.read_bytes() == (SHARED_WEIGHTS / file).read_bytes()
    assert sorted(p.name for p in cfg.weights_cache.iterdir()) == [file]
    assert weights.find_local(name, [], config=cfg) == (path, "cache")
    (root / "v0.2.2.4" / file).unlink()
    assert weights.download(name, config=cfg, progress=False) == path  # verified copy present: no 2nd fetch


def test_checksum_mismatch_leaves_nothing_behind(mirror: tuple[Path, Config]) -> None:
    root, cfg = mirror
    _place(root / "v0.2.2.4", "RealESRGAN_x4plus_anime_6B.pth", SHARED_WEIGHTS / FILE)  # wrong bytes
    with pytest.raises(ModelError, match=r"SHA-256 \w+ does not match RealESRGAN_x4plus_anime_6B"):
        weights.download("RealESRGAN_x4plus_anime_6B", config=cfg, progress=False)
    assert list(cfg.weights_cache.iterdir()) == []


def test_file_missing_on_the_server_is_a_one_line_error(mirror: tuple[Path, Config]) -> None:
    _, cfg = mirror
    with pytest.raises(ModelError) as exc:  # the mirror is up but has no such file: HTTP 404
        weights.resolve("RealESRGAN_x4plus", [], config=cfg)
    message = str(exc.value)
    assert "\n" not in message and "File not found" in message
    assert "`streamup models download RealESRGAN_x4plus`" in message
    assert list(cfg.weights_cache.iterdir()) == []
