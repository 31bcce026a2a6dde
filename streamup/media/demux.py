"""Reading a source: validate it is a video, then yield RGB frames and untouched audio/subtitle packets.

The decoder opens the container on the source's Python file object (so any transport behind
``streamup.storage`` works), rejects what is not a usable video with one line *before* any output exists, and
decodes the first frame up front: a file whose header parses but whose video does not decode fails here, and
the first frame tells the encoder the rotation and colour description it must reproduce.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from streamup.errors import InputError
from streamup.media import colour, ffmpeg_reason
from streamup.media.colour import Colour

log = logging.getLogger("streamup")

# Demuxers that read single pictures: a still image is not a video to upscale frame for frame.
_IMAGE_FORMATS = ("image2", "_pipe")


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


class Decoder:
    """Demuxes one source; iterating yields ``VideoFrame`` and ``av.Packet`` (audio, subtitles) in file order.

    Only the first video stream is decoded; every audio and subtitle stream is listed in ``passthrough`` and
    its packets are handed on as they come, never decoded. The caller owns the source file; ``close`` closes
    the container.
    """

    def __init__(self, file: BinaryIO, name: str) -> None:
        self.name = name
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
            first = self._first_frame()
            self.info = self._describe(first)
            self._rgb = colour.rgb_format(self.info.bit_depth)
            self._pending = [
                self._convert(item) if isinstance(item, av.VideoFrame) else item for item in self._pending
            ]
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[VideoFrame | av.Packet]:
        yield from self._pending
        self._pending = []
        try:
            for packet in self._packets:
                if packet.stream is not self._video:
                    if packet.size:  # empty packets only flush decoders; nothing to mux
                        yield packet
                    continue
                for frame in packet.decode():
                    yield self._convert(frame)
        except av.FFmpegError as e:
            raise InputError(f"{self.name}: video stops decoding ({ffmpeg_reason(e)})") from None

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
                frames = packet.decode()
                if frames:
                    self._pending.extend(frames)
                    return frames[0]
        except av.FFmpegError as e:
            raise InputError(f"video of {self.name} cannot be decoded ({ffmpeg_reason(e)})") from None
        raise InputError(f"no decodable video frame in {self.name}")

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
        matrix = next(
            (np.frombuffer(bytes(sd), "<i4") for sd in first.side_data if sd.type.name == "DISPLAYMATRIX"),
            None,
        )
        # Matroska keeps the aspect in the container (display size), H.264 in the bitstream: either counts.
        sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
        return VideoInfo(
            width=first.width,
            height=first.height,
            bit_depth=depth,
            time_base=stream.time_base,
            rate=rate,
            frames_estimate=frames,
            duration=duration,
            colour=colour.describe(first),
            display_matrix=tuple(int(v) for v in matrix) if matrix is not None else None,
            sample_aspect_ratio=sar if sar and sar.numerator else None,
            codec=ctx.name,
        )

    def _convert(self, frame: av.VideoFrame) -> VideoFrame:
        pts = frame.pts if frame.pts is not None else frame.dts
        return VideoFrame(colour.to_rgb(frame, self.info.colour, self._rgb), pts, self._video.time_base)


def _is_empty(file: BinaryIO) -> bool:
    try:
        return file.seek(0, 2) == 0
    except (OSError, ValueError):
        return False
