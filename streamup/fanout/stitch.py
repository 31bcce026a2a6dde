"""Stitch a job's segments into its output: video packets copied in order, the source's audio and subtitle
packets copied untouched, nothing decoded or encoded.

Checks first: every segment has a record, every record the same codec header (H.264 SPS/PPS, HEVC VPS/SPS/PPS
or FFV1's configuration; x264's ``stitchable`` keeps them equal), and each segment holds exactly the frames
the plan gave it. The media work is ``streamup.pipeline.remux.stitch``: the output goes through the same
``Encoder`` and sink as a single run (``copy_video`` mode), so it is the same container with the same rules:
fragmented mp4 on S3, Matroska as it is, the source's rotation, aspect ratio and every audio stream whole
(audio is never cut: it is read from the source, not the segments).

Timestamps: each video packet gets back the source's exact pts (Matroska rounded it to 1 ms; the plan knows
the exact value, and the nearest one is unique because the plan refused frames closer than 1 ms). Decode
times, which Matroska does not store, are rebuilt from the reorder depth of the shared header
(``remux.stitch`` says how). Video and audio are merged by time, so memory does not grow with the video.
"""

from __future__ import annotations

import threading
from typing import Any

from streamup.errors import OutputError
from streamup.fanout.plan import Plan
from streamup.fanout.workarea import WorkArea
from streamup.pipeline import remux
from streamup.pipeline.remux import Piece, Stitched

#: Decoder names of the encoders ``plan.STITCHABLE`` allows.
STITCHED_CODECS = frozenset({"h264", "hevc", "ffv1"})


class Incomplete(Exception):
    """Not every segment is recorded yet (the message names what is missing)."""


def check(plan: Plan, area: WorkArea) -> list[dict[str, Any]]:
    """Every segment's record, after checking that all are there and that their headers match."""
    records = []
    for segment in plan.segments:
        record = area.read(area.record(segment.index))
        if record is None:
            raise Incomplete(f"segment {segment.index} of {len(plan.segments)} is not done")
        if record["frames"] != segment.frames:
            raise OutputError(f"segment {segment.index} has {record['frames']} frames, "
                              f"the plan {segment.frames}")
        records.append(record)
    headers = {(r["codec"], r["header"]) for r in records}
    if not {codec for codec, _ in headers} <= STITCHED_CODECS:
        raise OutputError(f"segments in {sorted(headers)[0][0]} cannot be stitched (only H.264, HEVC, FFV1)")
    if len(headers) > 1:
        raise OutputError(f"segments have {len(headers)} different codec headers ({sorted(headers)}); "
                          "they cannot form one stream")
    return records


def stitch(plan: Plan, area: WorkArea, *, metadata: dict[str, str] | None = None, exclusive: bool = False,
           cancel: threading.Event | None = None) -> Stitched:
    """Write ``plan.destination`` from the segments (``Incomplete``, ``OutputError``, ``OutputExists``)."""
    records = check(plan, area)
    pieces = [Piece(s.index, area.segment(s.index), s.pts) for s in plan.segments]
    depth = int(records[0]["reorderDepth"])
    return remux.stitch(plan.source, plan.destination, pieces, plan.time_base, depth, metadata=metadata,
                        exclusive=exclusive, cancel=cancel)
