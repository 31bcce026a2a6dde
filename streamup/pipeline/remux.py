"""Stream copy at pipeline level: read a source's packets, and stitch encoded segments into one output.

Fan-out needs the pipeline's one-way path (storage → demux → mux → storage) without the upscaling in the
middle: it reads a source's video packets to plan the cuts (nothing decoded), reads each finished segment's
codec header, and stitches the segments' video packets and the source's audio and subtitle packets into the
destination (nothing decoded or encoded). This module is that path, beside ``run.py`` on the same layer: it
opens its ends as a single run does (``streamup.pipeline.ends``) and never uses a face, so the fan-out face
(``streamup.fanout``) stays above the pipeline level like every other face, handles plans and records only,
and never touches PyAV or the media layer itself. The output goes through the same ``Encoder``
(``copy_video`` mode) and sink as a single run, so it is the same container with the same rules.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from streamup.errors import Cancelled, InputError, OutputError
from streamup.media import ffmpeg_reason
from streamup.media.mux import Encoder, OutputInfo
from streamup.pipeline.ends import decoding, demuxing, encoding

#: How far a Matroska time may lie from the exact one: it is rounded to the millisecond.
_MS_SLACK = Fraction(1, 2000) + Fraction(1, 10**9)


# -- reading a source ----------------------------------------------------------------------------------------


class VideoPackets:
    """A source's first video stream, read packet by packet (nothing decoded): what a fan-out plan needs."""

    def __init__(self, source: str, container: Any) -> None:
        self._source = source
        self._container = container
        self._video = container.streams.video[0]
        ctx = self._video.codec_context
        #: Field order says interlaced (tb, bt, tt, bb; 0 unknown and 1 progressive are not).
        self.interlaced: bool = int(ctx.field_order or 0) > 1
        #: The decoder's pixel format (``av.VideoFormat``): which encoder the output gets by default.
        self.pixel_format: Any = ctx.format
        self.time_base: Fraction = self._video.time_base

    def packets(self) -> Iterator[tuple[int | None, bool]]:
        """(pts, is keyframe) of every non-empty video packet in file order; ``InputError``: unreadable."""
        try:
            for packet in self._container.demux(self._video):
                if packet.size:
                    yield packet.pts, packet.is_keyframe
        except av.FFmpegError as e:
            raise InputError(f"{self._source}: video cannot be read ({ffmpeg_reason(e)})") from None


@contextlib.contextmanager
def video_packets(source: str) -> Iterator[VideoPackets]:
    """Open ``source`` for ``VideoPackets``; ``InputError`` when it is no readable video or has no video."""
    with demuxing(source) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {source}")
        yield VideoPackets(source, container)


def header_of(uri: str) -> tuple[str, str, int]:
    """(codec, SHA-256 of the codec header, reorder depth) of a segment, read from its container header.

    The header (H.264 SPS/PPS, FFV1's configuration record) is what every segment must share for their
    packets to form one stream; the reorder depth (frames a B-frame may move) lets ``stitch`` rebuild decode
    timestamps, which Matroska does not store. A segment that is no video is ``OutputError``: the fan-out
    wrote it.
    """
    with demuxing(uri, blame=OutputError) as container:
        if not container.streams.video:
            raise OutputError(f"segment {uri} holds no video")
        ctx = container.streams.video[0].codec_context
        return ctx.name, hashlib.sha256(bytes(ctx.extradata or b"")).hexdigest(), ctx.reorder_depth


# -- stitching segments --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """One encoded piece of the video (a video-only segment object): its ``index`` (for messages), where it
    is, and the exact source pts of its frames, ascending."""

    index: int
    uri: str
    pts: tuple[int, ...]


@dataclass(frozen=True)
class Stitched:
    """What a stitch wrote: its frames, how long it took, the output's description, its size."""

    frames: int
    seconds: float
    output: OutputInfo
    bytes_written: int


def stitch(source: str, destination: str, pieces: Sequence[Piece], time_base: Fraction, reorder_depth: int, *,
           metadata: dict[str, str] | None = None, exclusive: bool = False,
           cancel: threading.Event | None = None) -> Stitched:
    """Write ``destination`` from ``pieces``' video packets, in order, and ``source``'s audio and subtitle
    packets, nothing decoded or encoded. The pieces share one codec header (the caller checks) whose
    reorder depth is ``reorder_depth``; together they hold every frame of the source, whose pts are on
    ``time_base``. ``OutputError`` (nothing published) when a piece's frames differ from its pts.

    Timestamps: each video packet gets back the source's exact pts (Matroska rounded it to 1 ms; the nearest
    of the piece's pts is unique when frames are at least 1 ms apart). Matroska stores no decode times, so
    they are rebuilt the way x264 makes them: the i-th packet in decode order gets the (i - d)-th smallest
    pts of the whole video, d being the reorder depth; the first d get one tick apart just before the first
    frame. That is monotonic and never after a packet's pts, which is all a muxer needs; each packet is
    checked. Video and audio are merged by time, so the muxer holds only a few packets and memory does not
    grow with the video.

    The source is opened twice: decoded for its description (one frame: the output's time base, rotation,
    aspect ratio and passthrough streams are a single run's), and demuxed for its audio and subtitle packets.
    """
    t0 = time.perf_counter()
    with decoding(source) as (decoder, _), demuxing(source) as others, \
            demuxing(pieces[0].uri, blame=OutputError) as first, \
            encoding(destination, decoder, copy_video=first.streams.video[0], metadata=metadata,
                     exclusive=exclusive) as (encoder, writer):
        frames = _copy(pieces, time_base, reorder_depth, encoder, others, decoder.passthrough, cancel)
    return Stitched(frames, time.perf_counter() - t0, encoder.info, writer.bytes)


def _copy(pieces: Sequence[Piece], time_base: Fraction, depth: int, encoder: Encoder, others: Any,
          passthrough: list[Any], cancel: threading.Event | None) -> int:
    """Merge the pieces' video packets and the source's passthrough packets by time into the encoder."""
    streams = [others.streams[s.index] for s in passthrough]
    packets = (p for p in others.demux(*streams) if p.size) if streams else iter(())
    timeline = heapq.merge(
        ((_time(p), 0, n, p) for n, p in enumerate(_video(pieces, time_base, depth))),
        ((_time(p), 1, n, p) for n, p in enumerate(packets)),
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
    total = sum(len(piece.pts) for piece in pieces)
    if frames != total:
        raise OutputError(f"stitched {frames} frames, the plan has {total}")
    return frames


def _time(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return ts * packet.time_base if ts is not None else Fraction(0)


def _video(pieces: Sequence[Piece], tb: Fraction, depth: int) -> Iterator[av.Packet]:
    """Every piece's packets in decode order with the source's exact pts and rebuilt decode times."""
    order = [p for piece in pieces for p in piece.pts]  # ascending: pieces are consecutive pts ranges
    i = 0
    for piece in pieces:
        exact = [p * tb for p in piece.pts]
        with demuxing(piece.uri, blame=OutputError) as container:
            video = container.streams.video[0]
            count = 0
            for packet in container.demux(video):
                if not packet.size:
                    continue
                pts = _exact(piece.index, exact, piece.pts, packet.pts * packet.time_base)
                dts = order[i - depth] if i >= depth else order[0] - (depth - i)
                if dts > pts:
                    raise OutputError(f"segment {piece.index}: frames reordered deeper than its header's "
                                      f"{depth}; cannot rebuild decode times")
                packet.pts, packet.dts, packet.time_base = pts, dts, tb
                i += 1
                count += 1
                yield packet
            if count != len(piece.pts):
                raise OutputError(f"segment {piece.index} holds {count} frames, the plan {len(piece.pts)}")


def _exact(index: int, exact: list[Fraction], pts: tuple[int, ...], seconds: Fraction) -> int:
    """The nearest pts to a packet's millisecond time (unique: frames are at least 1 ms apart)."""
    j = bisect.bisect_left(exact, seconds)
    best = min((k for k in (j - 1, j) if 0 <= k < len(exact)), key=lambda k: abs(exact[k] - seconds),
               default=None)
    if best is None or abs(exact[best] - seconds) > _MS_SLACK:
        raise OutputError(f"segment {index}: a frame at {float(seconds):.3f} s is not one of the source's")
    return pts[best]
