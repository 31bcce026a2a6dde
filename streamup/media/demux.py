"""Reading a source: validate it is a video, then yield RGB frames and untouched audio/subtitle packets.

The decoder opens the container on the source's Python file object (so any transport behind
``streamup.storage`` works), rejects what is not a usable video with one line *before* any output exists, and
decodes the first frame up front: a file whose header parses but whose video does not decode fails here, and
the first frame tells the encoder the rotation and colour description it must reproduce.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from streamup.errors import InputError, UsageError
from streamup.media import colour, ffmpeg_reason, formats, hdr, interlace, side_data
from streamup.media.colour import Colour
from streamup.media.formats import SourceFormat
from streamup.media.hdr import StaticHdr
from streamup.options import DEINTERLACE

log = logging.getLogger("streamup")

# Demuxers that read single pictures: a still image is not a video to upscale frame for frame.
_IMAGE_FORMATS = ("image2", "_pipe")
# How far before a segment's start ``Decoder.seek`` asks the demuxer to go when the index lands after it
# (seconds; an mp4 or Matroska index lands on the keyframe itself at the first try).
SEEK_BACK_S = (Fraction(0), Fraction(1), Fraction(10), Fraction(60))


@dataclass(frozen=True)
class VideoFrame:
    """One decoded picture as RGB, with the presentation time it must keep in the output."""

    image: np.ndarray
    pts: int | None
    time_base: Fraction


@dataclass(frozen=True)
class VideoInfo:
    """What the encoder must reproduce about the source's video stream."""

    width: int
    height: int
    bit_depth: int
    time_base: Fraction
    rate: Fraction | None
    frames_estimate: int | None
    duration: float | None
    colour: Colour
    display_matrix: tuple[int, ...] | None
    sample_aspect_ratio: Fraction | None
    codec: str
    # The decoded pixel format and codec profile (what the output must keep), static HDR10 metadata, and
    # whether the frames were deinterlaced ("off", "frame" or "field" rate).
    source: SourceFormat
    hdr: StaticHdr | None = None
    deinterlaced: str = "off"


class Decoder:
    """Demuxes one source; iterating yields ``VideoFrame`` and ``av.Packet`` (audio, subtitles) in file order.

    Only the first video stream is decoded; every audio and subtitle stream is listed in ``passthrough`` and
    its packets are handed on as they come, never decoded. The caller owns the source file; ``close`` closes
    the container.
    """

    def __init__(self, file: BinaryIO, name: str, *, deinterlace: str = "auto") -> None:
        if deinterlace not in DEINTERLACE:
            raise UsageError(f"--deinterlace must be one of {'/'.join(DEINTERLACE)}, not {deinterlace!r}")
        self.name = name
        self._deinterlace_mode = deinterlace
        self._deinterlacer: interlace.Deinterlacer | None = None
        try:
            self._container = av.open(file, mode="r")
        except (av.FFmpegError, OSError, ValueError) as e:  # an empty file fails with a bare EINVAL
            why = "empty file" if _is_empty(file) else ffmpeg_reason(e)
            raise InputError(f"not a readable video: {name} ({why})") from None
        try:
            self._video = self._find_video()
            self.passthrough: list[av.stream.Stream] = [
                s for s in self._container.streams if s.type in ("audio", "subtitle")
            ]
            for s in self._container.streams:
                if s is not self._video and s not in self.passthrough:  # timecode, cover art, fonts...
                    log.warning("ignoring %s stream #%d of %s: only the first video stream, audio and "
                                "subtitles are carried over", s.type, s.index, name)
            self._packets = self._container.demux(self._video, *self.passthrough)
            self._pending: list[VideoFrame | av.Packet] = []
            self._span: tuple[Fraction | None, Fraction | None] | None = None
            first = self._first_frame()
            self.info = self._describe(first)
            self._rgb = formats.rgb_format(self.info.source.layout)
            self._pending = [
                self._convert(item) if isinstance(item, av.VideoFrame) else item for item in self._pending
            ]
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[VideoFrame | av.Packet]:
        items = self._items()
        return items if self._span is None else self._within(items, *self._span)

    def seek(self, start: Fraction | None, end: Fraction | None) -> None:
        """From now on yield only the video frames whose presentation time (seconds, the source's own
        timeline) lies in [start, end), and no packets: one segment of a fanned-out job (``None``: open end).

        Seeks to the keyframe at or before ``start`` (further back when the index lands after it), so the
        pre-roll is at most one GOP. Decoding runs past ``end`` until the decoder outputs a frame at or after
        it: an open GOP starting at ``end`` decodes its leading B-frames (shown before its keyframe) after
        that keyframe, and they belong here. Frames come out in presentation order, so the first one at or
        after ``end`` is the last one decoded.
        """
        self.passthrough = []
        self._span = (start, end)
        first = start if start is not None else Fraction(0)
        last = end if end is not None else Fraction(self.info.duration or 0)
        seconds = max(Fraction(0), last - first)
        frames = round(seconds * self.info.rate) if self.info.rate else None
        self.info = replace(self.info, frames_estimate=frames, duration=float(seconds))
        if start is None:
            return  # from the top: the frames decoded up front are the segment's first ones
        self._pending = []
        tb = self._video.time_base
        for back_s in SEEK_BACK_S:
            self._container.seek(math.floor((start - back_s) / tb), stream=self._video, backward=True)
            self._video.codec_context.flush_buffers()
            if self._deinterlacer is not None:  # forget the fields from before the seek (bwdif looks back)
                field_rate = self._deinterlacer.field_rate
                self._deinterlacer = interlace.Deinterlacer(self._video, field_rate=field_rate)
            packets = self._container.demux(self._video)  # its empty packets at the end flush the decoder
            head = next(packets, None)
            if head is None or not head.size or (
                    head.pts is not None and head.pts * tb <= start and head.is_keyframe):
                self._packets = itertools.chain([head] if head else [], packets)
                return
        raise InputError(f"{self.name}: cannot seek to {float(start):.3f} s (no keyframe at or before it)")

    def _within(self, items: Iterator[VideoFrame | av.Packet], start: Fraction | None,
                end: Fraction | None) -> Iterator[VideoFrame | av.Packet]:
        for item in items:
            if not isinstance(item, VideoFrame):
                continue
            if item.pts is None:
                raise InputError(f"{self.name}: a video frame has no timestamp, so it cannot be cut")
            t = item.pts * item.time_base
            if end is not None and t >= end:
                return
            if start is None or t >= start:
                yield item

    def _items(self) -> Iterator[VideoFrame | av.Packet]:
        yield from self._pending
        self._pending = []
        try:
            for packet in self._packets:
                if packet.stream is not self._video:
                    if packet.size:  # empty packets only flush decoders; nothing to mux
                        yield packet
                    continue
                for frame in self._progressive(packet.decode()):
                    yield self._convert(frame)
            for frame in self._progressive([None]):  # the deinterlacer's last frames
                yield self._convert(frame)
        except av.FFmpegError as e:
            raise InputError(f"{self.name}: video stops decoding ({ffmpeg_reason(e)})") from None

    def _progressive(self, frames: list[av.VideoFrame] | list[None]) -> list[av.VideoFrame]:
        """Decoded frames through the deinterlacer when there is one (``[None]`` flushes it)."""
        if self._deinterlacer is None:
            return [f for f in frames if f is not None]
        return [out for f in frames for out in self._deinterlacer.push(f)]

    def close(self) -> None:
        self._container.close()

    def _find_video(self) -> av.VideoStream:
        fmt = self._container.format.name
        if not self._container.streams.video:
            raise InputError(f"no video stream in {self.name} (format {fmt})")
        if any(fmt.endswith(tag) or fmt == tag for tag in _IMAGE_FORMATS):
            raise InputError(f"{self.name} is a still image ({fmt}), not a video")
        # Decoder threading stays PyAV's default (slice threads): frame threading hides a decode error at a
        # truncated end (the run would "succeed" with frames missing), and the model, not decoding, is the
        # bottleneck of every run.
        return self._container.streams.video[0]

    def _first_frame(self) -> av.VideoFrame:
        """Demux until the first picture decodes, keeping the packets met on the way (they precede it)."""
        try:
            for packet in self._packets:
                if packet.stream is not self._video:
                    if packet.size:
                        self._pending.append(packet)
                    continue
                decoded = packet.decode()
                if decoded and self._deinterlacer is None:
                    self._start_deinterlacer(decoded[0])
                frames = self._progressive(decoded)
                if frames:
                    self._pending.extend(frames)
                    return frames[0]
            frames = self._progressive([None])  # a one-frame interlaced clip
            if frames:
                self._pending.extend(frames)
                return frames[0]
        except av.FFmpegError as e:
            raise InputError(f"video of {self.name} cannot be decoded ({ffmpeg_reason(e)})") from None
        raise InputError(f"no decodable video frame in {self.name}")

    def _start_deinterlacer(self, first: av.VideoFrame) -> None:
        """Deinterlace (``auto``: at frame rate, ``field``: at field rate) when the source is interlaced."""
        mode = self._deinterlace_mode
        if mode == "off" or not interlace.is_interlaced(self._video, first):
            if mode == "field":
                log.warning("--deinterlace field: %s is progressive; frames are kept as they are", self.name)
            return
        self._deinterlacer = interlace.Deinterlacer(self._video, field_rate=mode == "field")
        log.info("%s is interlaced (%s): deinterlacing with bwdif at %s rate", self.name,
                 interlace.field_order(self._video), "field" if mode == "field" else "frame")

    def _describe(self, first: av.VideoFrame) -> VideoInfo:
        stream = self._video
        ctx = stream.codec_context
        depth = max(c.bits for c in first.format.components)
        rate = stream.average_rate or stream.guessed_rate
        duration = None
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration:
            duration = self._container.duration / 1_000_000
        frames = stream.frames or (round(duration * rate) if duration and rate else None)
        deinterlaced = "off"
        if self._deinterlacer is not None:
            deinterlaced = "field" if self._deinterlacer.field_rate else "frame"
        if deinterlaced == "field":  # one frame per field: twice the frames, at twice the rate
            rate = rate * 2 if rate else rate
            frames = frames * 2 if frames else frames
        display = side_data(first, "DISPLAYMATRIX")
        matrix = None if display is None else np.frombuffer(display, "<i4")
        # Matroska keeps the aspect in the container (display size), H.264 in the bitstream: either counts.
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        return VideoInfo(
            width=first.width,
            height=first.height,
            bit_depth=depth,
            time_base=first.time_base if self._deinterlacer is not None else stream.time_base,
            rate=rate,
            frames_estimate=frames,
            duration=duration,
            colour=colour.describe(first),
            display_matrix=tuple(int(v) for v in matrix) if matrix is not None else None,
            sample_aspect_ratio=sar if sar and sar.numerator else None,
            codec=ctx.name,
            source=SourceFormat(ctx.name, _profile(ctx), first.format.name),
            hdr=hdr.read(first, self.name),
            deinterlaced=deinterlaced,
        )

    def _convert(self, frame: av.VideoFrame) -> VideoFrame:
        pts = frame.pts if frame.pts is not None else frame.dts
        return VideoFrame(colour.to_rgb(frame, self.info.colour, self._rgb), pts, self.info.time_base)


def _profile(ctx: av.VideoCodecContext) -> str | None:
    try:
        return ctx.profile
    except (ValueError, KeyError):  # a profile number PyAV has no name for
        return None


def _is_empty(file: BinaryIO) -> bool:
    try:
        return file.seek(0, 2) == 0
    except (OSError, ValueError):
        return False
