"""The pipeline room: the one level where storage, demux, engine and mux are wired together.

- ``run``: ``upscale(source, destination)``, one video through decode → engine → encode.
- ``remux``: stream copy with nothing decoded (a source's packets for planning cuts, and finished segments
  stitched into one output): the fan-out's media work.
- ``ends``: the one way every path here opens its source (decoded, or demuxed for packets) and its sink
  (with its encoder, published or removed as a whole).
- ``flow``: the plumbing under the stages (stop flag, bounded channels, turns, busy clocks, byte counts).
- ``reuse``: which tiles of a frame are unchanged since their output was computed (``--reuse auto``).

Faces (CLI, worker, metrics, fan-out) import from here and never below it.
"""

from __future__ import annotations

from streamup.pipeline.run import (
    QUEUES,
    STAGES,
    Progress,
    ProgressCallback,
    UpscaleResult,
    build_upscaler,
    default_device,
    upscale,
)

__all__ = ["QUEUES", "STAGES", "Progress", "ProgressCallback", "UpscaleResult", "build_upscaler",
           "default_device", "upscale"]
