"""Join a job's segments into its output: video packets copied in order, the source's audio and subtitle
packets copied untouched, nothing decoded or encoded.

Checks first: every segment has a record, every record the same codec header (H.264 SPS/PPS, HEVC VPS/SPS/PPS
or FFV1's configuration; x264's ``stitchable`` keeps them equal), and each segment holds exactly the frames
the plan gave it. The output goes through the same ``Encoder`` and sink as a single run (``copy_video`` mode),
so it is the same container with the same rules: fragmented mp4 on S3, Matroska as it is, the source's
rotation, aspect ratio and every audio stream whole (audio is never cut: it is read from the source, not the
segments).

Timestamps: each video packet gets back the source's exact pts (Matroska rounded it to 1 ms; the plan knows
the exact value, and the nearest one is unique because the plan refused frames closer than 1 ms). Matroska
stores no decode times, so they are rebuilt the way x264 makes them: the i-th packet in decode order gets the
(i - d)-th smallest pts of the whole video, d being the reorder depth of the shared header; the first d get
one tick apart just before the first frame. That is monotonic and never after a packet's pts, which is all a
muxer needs; each packet is checked. Video and audio are merged by time, so the muxer holds only a few
packets and memory does not grow with the video.
"""

from __future__ import annotations

import bisect
import heapq
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from streamup import storage
from streamup.errors import Cancelled, OutputError
from streamup.fanout.plan import Plan
from streamup.fanout.store import WorkArea
from streamup.flow import Counted
from streamup.media import mux
from streamup.media.demux import Decoder
from streamup.media.mux import Encoder, EncodeSettings, OutputInfo

#: Decoder names of the encoders ``plan.STITCHABLE`` allows.
STITCHED_CODECS = frozenset({"h264", "hevc", "ffv1"})
#: How far a Matroska time may lie from the exact one: it is rounded to the millisecond.
_MS_SLACK = Fraction(1, 2000) + Fraction(1, 10**9)


class Incomplete(Exception):
    """Not every segment is recorded yet (the message names what is missing)."""


@dataclass(frozen=True)
class Stitched:
    frames: int
    seconds: float
    output: OutputInfo
    bytes_written: int


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
    t0 = time.perf_counter()
    extension = os.path.splitext(plan.destination.split("?", 1)[0])[1].lower()
    with storage.open_source(plan.source) as src, storage.open_source(plan.source) as audio_src, \
            storage.open_source(area.segment(0)) as first:
        decoder = Decoder(src.file, plan.source)  # type: ignore[arg-type]  # its streams and info, one frame
        try:
            with av.open(first.file, mode="r") as head:  # type: ignore[arg-type]
                template = head.streams.video[0]
                sink_ = storage.open_sink(plan.destination, content_type=mux.CONTENT_TYPES[extension],
                                          metadata=dict(metadata or {}), exclusive=exclusive)
                with sink_ as sink, av.open(audio_src.file, mode="r") as audio:  # type: ignore[arg-type]
                    writer = Counted(sink.file)
                    encoder = Encoder(writer, sink.extension,  # type: ignore[arg-type]
                                      seekable=sink.seekable, video=decoder.info, scale=1,
                                      passthrough=decoder.passthrough, settings=EncodeSettings(),
                                      copy_video=template)
                    try:
                        frames = _copy(plan, area, records, encoder, audio, decoder.passthrough, cancel)
                        encoder.close()
                    except BaseException:
                        encoder.abort()
                        raise
        finally:
            decoder.close()
    return Stitched(frames, time.perf_counter() - t0, encoder.info, writer.bytes)


def _copy(plan: Plan, area: WorkArea, records: list[dict[str, Any]], encoder: Encoder, audio: Any,
          passthrough: list[Any], cancel: threading.Event | None) -> int:
    """Merge the segments' video packets and the source's passthrough packets by time into the encoder."""
    streams = [audio.streams[s.index] for s in passthrough]
    others = (p for p in audio.demux(*streams) if p.size) if streams else iter(())
    timeline = heapq.merge(
        ((_time(p), 0, n, p) for n, p in enumerate(_video(plan, area, records))),
        ((_time(p), 1, n, p) for n, p in enumerate(others)),
        key=lambda item: item[:3])
    frames = 0
    for _, kind, _, packet in timeline:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled; no output written")
        if kind == 0:
            encoder.write_video_packet(packet)
            frames += 1
        else:
            encoder.write_packet(packet)
    if frames != plan.frames:
        raise OutputError(f"stitched {frames} frames, the plan has {plan.frames}")
    return frames


def _time(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return ts * packet.time_base if ts is not None else Fraction(0)


def _video(plan: Plan, area: WorkArea, records: list[dict[str, Any]]) -> Iterator[av.Packet]:
    """Every segment's packets in decode order with the source's exact pts and rebuilt decode times."""
    tb = plan.time_base
    order = [p for s in plan.segments for p in s.pts]  # ascending: segments are consecutive pts ranges
    depth = int(records[0]["reorderDepth"])
    i = 0
    for segment in plan.segments:
        exact = [p * tb for p in segment.pts]
        with storage.open_source(area.segment(segment.index)) as src, \
                av.open(src.file, mode="r") as container:  # type: ignore[arg-type]
            video = container.streams.video[0]
            count = 0
            for packet in container.demux(video):
                if not packet.size:
                    continue
                pts = _exact(segment.index, exact, segment.pts, packet.pts * packet.time_base)
                dts = order[i - depth] if i >= depth else order[0] - (depth - i)
                if dts > pts:
                    raise OutputError(f"segment {segment.index}: frames reordered deeper than its header's "
                                      f"{depth}; cannot rebuild decode times")
                packet.pts, packet.dts, packet.time_base = pts, dts, tb
                i += 1
                count += 1
                yield packet
            if count != segment.frames:
                raise OutputError(f"segment {segment.index} holds {count} frames, the plan {segment.frames}")


def _exact(index: int, exact: list[Fraction], pts: tuple[int, ...], seconds: Fraction) -> int:
    """The plan's pts nearest to a packet's millisecond time (unique: frames are at least 1 ms apart)."""
    j = bisect.bisect_left(exact, seconds)
    best = min((k for k in (j - 1, j) if 0 <= k < len(exact)), key=lambda k: abs(exact[k] - seconds),
               default=None)
    if best is None or abs(exact[best] - seconds) > _MS_SLACK:
        raise OutputError(f"segment {index}: a frame at {float(seconds):.3f} s is not one of the source's")
    return pts[best]
