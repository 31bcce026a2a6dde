"""The seam between the pipeline and whatever turns small frames into big ones.

The pipeline only knows this protocol; Real-ESRGAN networks and the lanczos preview both implement it, so the
pipeline's fidelity can be tested with a cheap upscaler and the engine's quality with real models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from streamup.engine.tiling import Tile


class FrameUpscaler(Protocol):
    """Upscales RGB frames by an exact integer factor.

    Frames are ``H x W x 3`` arrays, ``uint8`` (8-bit video) or ``uint16`` (deeper video, full 16-bit range);
    the result has the same dtype and is exactly ``scale * H x scale * W``. All frames of one call have the
    same size. ``batch_frames`` is how many frames the caller should hand over at once for good throughput;
    ``lanes`` how many such calls it should keep running at once (threads; the CPU engine runs best as
    several single-threaded lanes, see ``tiling.CPU_LANES``).
    ``device`` ("cpu", "cuda") and ``precision`` ("fp32", "bf16", "fp16") say where it really runs (a GPU
    request can fall back to the CPU); ``oom_retries`` counts out-of-memory retries since it was built. One
    upscaler may serve several runs at once (a worker's jobs share one loaded model), so ``upscale`` must be
    safe to call from several threads.
    """

    scale: int
    batch_frames: int
    lanes: int
    name: str
    device: str
    precision: str
    oom_retries: int

    def upscale(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]: ...


@runtime_checkable
class TiledUpscaler(FrameUpscaler, Protocol):
    """A ``FrameUpscaler`` that cuts frames on a fixed grid and can compute only some of its tiles.

    The output of a tile's core depends only on the input inside its window (core + pad, ``grid``), so a
    caller that finds a window unchanged since a frame it already has the output of may keep that output and
    ask for the other tiles only: ``upscale(frames, tiles)`` computes at least ``tiles[i]`` of frame ``i``
    (every tile when ``tiles`` is None) and leaves the rest of that output undefined, for the caller to fill.
    ``grid`` may change during a run (a CUDA out-of-memory retry halves the tile); a call whose tiles are no
    longer on the grid computes whole frames, so a caller never gets less than it asked for.
    """

    def grid(self, height: int, width: int) -> list[Tile]: ...

    def upscale(
        self, frames: Sequence[np.ndarray], tiles: Sequence[Sequence[Tile]] | None = None
    ) -> list[np.ndarray]: ...
