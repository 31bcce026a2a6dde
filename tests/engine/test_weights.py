"""Weights resolution order, the verified atomic download (from a real local HTTP server), offline errors."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamup.engine import registry, weights
from streamup.errors import ModelError
from tests.conftest import SHARED_WEIGHTS

NAME = "realesr-animevideov3"
FILE = "realesr-animevideov3.pth"


def _place(folder: Path, name: str = FILE, source: Path = SHARED_WEIGHTS / FILE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(source, folder / name))


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag, env1, env2 = tmp_path / "flag", tmp_path / "env1", tmp_path / "env2"
    monkeypatch.setenv("STREAMUP_WEIGHTS_DIR", os.pathsep.join([str(env1), str(env2)]))
    cache = _place(weights.cache_dir())
    in_env2 = _place(env2)
    in_flag = _place(flag)
    explicit = _place(tmp_path / "elsewhere", "mine.pth")

    assert weights.resolve(str(explicit), [flag]) == explicit
    assert weights.resolve(NAME, [flag]) == in_flag
    assert weights.find_local(NAME, [flag]) == (in_flag, "weights-dir")
    in_flag.unlink()
    assert weights.find_local(NAME, [flag]) == (in_env2, "weights-dir")
    in_env2.unlink()
    assert weights.find_local(NAME, [flag]) == (cache, "cache")
    cache.unlink()
    path, source = weights.find_local(NAME, [flag]) or (None, None)
    assert source == "bundled" and path == registry.DATA_DIR / FILE and path.stat().st_size > 1_000_000


def test_bundled_model_is_the_accepted_conversion() -> None:
    info = registry.model_info(NAME)
    assert info and info.bundled
    assert info.checksum_ok(registry.sha256_of(registry.DATA_DIR / FILE))


def test_list_models_reports_where_and_whether_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _place(tmp_path / "mine", "RealESRGAN_x4plus.pth")  # the compact file under the x4plus name
    statuses = {s.name: s for s in weights.list_models([fake.parent])}
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


def test_offline_and_missing_names_where_it_looked_and_the_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMUP_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("STREAMUP_OFFLINE", "1")
    with pytest.raises(ModelError) as exc:
        weights.resolve("RealESRGAN_x4plus")
    message = str(exc.value)
    assert "\n" not in message
    assert str(tmp_path / "empty") in message and str(weights.cache_dir()) in message
    assert "`streamup models download RealESRGAN_x4plus`" in message


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real HTTP server on 127.0.0.1 serving a folder laid out like the release (<tag>/<file>)."""
    root = tmp_path / "mirror"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STREAMUP_WEIGHTS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("STREAMUP_WEIGHTS_DIR", str(tmp_path / "empty"))
    yield root
    server.shutdown()
    server.server_close()


def test_resolve_downloads_verifies_and_renames_into_the_cache(mirror: Path) -> None:
    name, file = "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x4plus_anime_6B.pth"
    _place(mirror / "v0.2.2.4", file, SHARED_WEIGHTS / file)
    path = weights.resolve(name)
    assert path == weights.cache_dir() / file
    assert path.read_bytes() == (SHARED_WEIGHTS / file).read_bytes()
    assert sorted(p.name for p in weights.cache_dir().iterdir()) == [file]
    assert weights.find_local(name) == (path, "cache")
    (mirror / "v0.2.2.4" / file).unlink()
    assert weights.download(name, progress=False) == path  # verified copy present: no second fetch


def test_checksum_mismatch_leaves_nothing_behind(mirror: Path) -> None:
    _place(mirror / "v0.2.2.4", "RealESRGAN_x4plus_anime_6B.pth", SHARED_WEIGHTS / FILE)  # wrong bytes
    with pytest.raises(ModelError, match=r"SHA-256 \w+ does not match RealESRGAN_x4plus_anime_6B"):
        weights.download("RealESRGAN_x4plus_anime_6B", progress=False)
    assert list(weights.cache_dir().iterdir()) == []


def test_file_missing_on_the_server_is_a_one_line_error(mirror: Path) -> None:
    with pytest.raises(ModelError) as exc:  # the mirror is up but has no such file: HTTP 404
        weights.resolve("RealESRGAN_x4plus")
    message = str(exc.value)
    assert "\n" not in message and "File not found" in message
    assert "`streamup models download RealESRGAN_x4plus`" in message
    assert list(weights.cache_dir().iterdir()) == []
