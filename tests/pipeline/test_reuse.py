"""Reuse of unchanged pictures (``streamup.pipeline.reuse``): the decision on real arrays, and whole runs of
the real default model on small clips made from the shared media (a still picture, a box moving over it).

The runs use a ``TorchUpscaler`` that counts the windows its network computes (a subclass, the real model
underneath), 64 px tiles (six per 160x90 frame, so reuse of part of a frame happens) and lossless FFV1 output,
so what is compared is the upscaler's output, not an encoder's.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from prometheus_client import CollectorRegistry

from benchmarks.reuse import frames_of, psnr
from streamup.engine import tiling
from streamup.engine.upscaler import TorchUpscaler
from streamup.errors import UsageError
from streamup.metrics import Metrics
from streamup.observe import JobRef, run_observed
from streamup.options import UpscaleOptions
from streamup.pipeline import UpscaleResult, build_upscaler, upscale
from streamup.pipeline.reuse import BLOCK_LEVELS, RMS_LEVELS, Reuse, unchanged
from tests.conftest import media
from tests.media import probe

TILE = 64
SIZE = (160, 90)
GRID = tiling.plan(SIZE[1], SIZE[0], TILE, tiling.DEFAULT_PAD)


class _Counting(TorchUpscaler):
    """The real engine, counting the windows its network computes (thread-safe: lanes share it)."""

    windows = 0
    _lock = threading.Lock()

    def _forward(self, windows: torch.Tensor, maxval: float) -> torch.Tensor:
        with self._lock:
            self.windows += len(windows)
        return super()._forward(windows, maxval)


def _engine(lanes: int = 1) -> _Counting:
    base = build_upscaler(UpscaleOptions(scale=2, tile=TILE, lanes=lanes))
    assert isinstance(base, TorchUpscaler)
    return _Counting(base.model, base.placement, scale=2, tile=TILE, tile_pad=base.tile_pad, batch=base.batch,
                     name=base.name, max_batch_pixels=base.max_batch_pixels, lanes=lanes)


def _clip(folder: Path, name: str, overlay: str | None, seconds: float = 1.0) -> Path:
    """The still picture at 160x90 for ``seconds`` at 24 fps, x264 crf 20, with the main clip's AAC audio;
    ``overlay``: an ffmpeg overlay x expression for an 8 px red box (None: no box)."""
    out = folder / name
    graph = f"[0]scale={SIZE[0]}:{SIZE[1]}[bg]"
    graph += f";[bg][1]overlay=x='{overlay}':y=60[v]" if overlay else ";[bg]null[v]"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", "24",
                    "-i", str(media("still_640x360.png")), "-f", "lavfi", "-i", "color=c=red:s=8x8:r=24",
                    "-i", str(media("main_h264_aac_640x360.mp4")), "-filter_complex", graph,
                    "-map", "[v]", "-map", "2:a", "-t", str(seconds), "-c:v", "libx264", "-crf", "20",
                    "-pix_fmt", "yuv420p", "-c:a", "copy", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reuse-clips")
    return {"still": _clip(folder, "still.mp4", None), "box": _clip(folder, "box.mp4", "10+4*n")}


def _run(src: Path, out: Path, reuse: str, engine: TorchUpscaler, **kw: object) -> UpscaleResult:
    return upscale(str(src), str(out), UpscaleOptions(scale=2, codec="ffv1", reuse=reuse), upscaler=engine,
                   **kw)  # type: ignore[arg-type]


# -- the decision -------------------------------------------------------------------------------------------

def _frame(seed: int, dtype: type = np.uint8) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 65535
    return np.random.default_rng(seed).integers(0, top, (SIZE[1], SIZE[0], 3), dtype=dtype)


def test_an_unchanged_frame_is_reused_and_a_moved_block_recomputes_its_windows_only() -> None:
    reuse = Reuse(lambda h, w: tiling.plan(h, w, TILE, tiling.DEFAULT_PAD), 2)
    first = _frame(1)
    assert reuse.choose(first).compute == GRID  # nothing to reuse yet
    assert reuse.choose(first.copy()).compute == []
    moved = first.copy()
    moved[80:88, 140:148] = 0  # an 8 px block in the bottom right corner: inside one window only
    choice = reuse.choose(moved)
    assert [(t.y0, t.x0) for t in choice.compute] == [(64, 128)]
    assert len(choice.reused) == len(GRID) - 1


def test_gradual_drift_is_caught_against_the_anchor_not_the_previous_frame() -> None:
    reuse = Reuse(lambda h, w: [tiling.Tile(0, h, 0, w, 0, h, 0, w)], 2)
    base = np.full((SIZE[1], SIZE[0], 3), 100, np.uint8)
    rows = np.arange(SIZE[1])[:, None, None]
    # frame k: k rows of the 90 two levels brighter; each frame is one row (RMS 0.21) from the one before
    frames = [(base + 2 * ((rows < k * 9) & (rows % 9 == 0))).astype(np.uint8) for k in range(11)]
    assert all(unchanged(b, a) for a, b in itertools.pairwise(frames))
    computed = [bool(reuse.choose(f).compute) for f in frames]
    # against the anchor (frame 0) the difference grows until frame 9 (RMS 0.63 > RMS_LEVELS): computed there
    assert computed == [True] + [False] * 8 + [True, False]


def test_sixteen_bit_frames_are_judged_in_eight_bit_levels() -> None:
    a = _frame(2, np.uint16)
    noise = np.random.default_rng(3).integers(-64, 65, a.shape)  # a quarter of an 8-bit level
    assert unchanged(np.clip(a + noise, 0, 65535).astype(np.uint16), a)
    assert not unchanged(np.clip(a.astype(np.int64) + 257 * 3, 0, 65535).astype(np.uint16), a)
    assert BLOCK_LEVELS > RMS_LEVELS > 0


# -- whole runs of the real model --------------------------------------------------------------------------

@pytest.mark.slow
def test_a_still_clip_computes_the_network_once(clips: dict[str, Path], tmp_path: Path) -> None:
    engine = _engine()
    result = _run(clips["still"], tmp_path / "out.mkv", "auto", engine)
    assert engine.windows == len(GRID)  # the first frame's tiles, then nothing
    assert result.frames == 24 and result.frames_reused == 23
    assert (result.tiles_computed, result.tiles_reused) == (len(GRID), 23 * len(GRID))
    assert 0 < result.reuse_held_bytes < 2 * (SIZE[0] * SIZE[1] * 3) * (1 + 4)  # anchors + one output
    assert probe.failed(probe.fidelity_checks(clips["still"], tmp_path / "out.mkv", 2)) == {}


@pytest.mark.slow
def test_reuse_matches_computing_everything_and_keeps_time_and_audio(clips: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    engine = _engine()
    auto = _run(clips["box"], tmp_path / "auto.mkv", "auto", engine)
    reused_windows = engine.windows
    off = _run(clips["box"], tmp_path / "off.mkv", "off", engine)
    assert engine.windows - reused_windows == off.frames * len(GRID)  # off computed every tile
    assert auto.tiles_reused > 0 and auto.tiles_computed == reused_windows < off.frames * len(GRID)
    assert (off.frames_reused, off.tiles_reused, off.tiles_computed) == (0, 0, 0)
    a, b = frames_of(tmp_path / "auto.mkv"), frames_of(tmp_path / "off.mkv")
    assert len(a) == len(b) == auto.frames == 24
    assert min(psnr(x, y) for x, y in zip(a, b, strict=True)) >= 45.0
    for out in ("auto.mkv", "off.mkv"):  # frame count, timestamps, audio bytes
        assert probe.failed(probe.fidelity_checks(clips["box"], tmp_path / out, 2)) == {}


@pytest.mark.slow
def test_two_lanes_give_the_frames_of_one(clips: dict[str, Path], tmp_path: Path) -> None:
    one = _run(clips["box"], tmp_path / "one.mkv", "auto", _engine(lanes=1))
    two = _run(clips["box"], tmp_path / "two.mkv", "auto", _engine(lanes=2))
    assert [f.tobytes() for f in frames_of(tmp_path / "one.mkv")] == \
        [f.tobytes() for f in frames_of(tmp_path / "two.mkv")]
    assert (one.tiles_reused, one.frames_reused) == (two.tiles_reused, two.frames_reused)


@pytest.mark.slow
def test_a_segment_starts_fresh(clips: dict[str, Path], tmp_path: Path) -> None:
    engine = _engine()
    segment = _run(clips["still"], tmp_path / "seg.mkv", "auto", engine, span=(Fraction(1, 2), None))
    assert engine.windows == len(GRID)  # its first frame is computed: nothing carried over from another run
    assert segment.frames == 12 and segment.frames_reused == 11
    _run(clips["still"], tmp_path / "whole.mkv", "auto", engine)  # reuses its first frame's output throughout
    whole = frames_of(tmp_path / "whole.mkv")[12:]
    assert min(psnr(a, b) for a, b in zip(frames_of(tmp_path / "seg.mkv"), whole, strict=True)) >= 45.0


@pytest.mark.slow
def test_metrics_count_reused_frames_and_tiles(clips: dict[str, Path], tmp_path: Path) -> None:
    metrics = Metrics(CollectorRegistry(), process_collectors=False)
    result = run_observed(JobRef("box", "none", "cpu"), [metrics], str(clips["box"]), str(tmp_path / "o.mkv"),
                          UpscaleOptions(scale=2, codec="ffv1"), upscaler=_engine())
    value = metrics.registry.get_sample_value
    assert value("streamup_tiles_total", {"outcome": "reused"}) == result.tiles_reused > 0
    assert value("streamup_tiles_total", {"outcome": "computed"}) == result.tiles_computed > 0
    assert value("streamup_reused_frames_total") == result.frames_reused


def test_an_unknown_reuse_mode_is_a_usage_error_that_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="reuse must be one of auto, off"):
        upscale(str(media("noaudio_h264.mp4")), str(tmp_path / "out.mp4"),
                UpscaleOptions(model="lanczos", reuse="sometimes"))
    assert list(tmp_path.iterdir()) == []
