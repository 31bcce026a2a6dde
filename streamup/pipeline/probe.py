"""What a source is, from its container header: frame size, duration and byte size, nothing decoded.

The worker's admission policy (``streamup.worker.admission``) weighs a job against its tier's limits before
a model is built or a frame decoded; faces never import PyAV, so the one look at the header they need lives
here, on the pipeline level. Opening a container runs FFmpeg's stream-info step, which reads the header and
the first packets; no frame is converted or handed to the engine. Measured on ../shared/media: FFmpeg reads
32-100 KiB of an mp4, mov or Matroska file (75 KiB of the 761 KB orig_chaplin mp4, index at the end); over
https the ranged reader fetched 468 KB of that file in 5 requests, as its blocks double while reads run on.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamup.errors import InputError
from streamup.pipeline.ends import demuxing  # the one place a source becomes a container


@dataclass(frozen=True)
class Probe:
    """A source's first video stream's frame size, its duration in seconds (None when the header does not
    say) and the source's size in bytes (None when the transport cannot tell)."""

    width: int
    height: int
    duration: float | None
    size: int | None


def probe(source: str) -> Probe:
    """``source``'s header; ``InputError`` when it cannot be read or holds no video stream."""
    with demuxing(source) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {source}")
        video = container.streams.video[0]
        duration = container.duration / 1_000_000 if container.duration else None
        if duration is None and video.duration is not None:
            duration = float(video.duration * video.time_base)
        size = container.size if container.size > 0 else None
        return Probe(video.codec_context.width, video.codec_context.height, duration, size)
