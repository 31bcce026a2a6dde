"""Containers and codecs: reading a source into RGB frames and passthrough packets, writing the output."""

from __future__ import annotations


def ffmpeg_reason(e: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and function-name decorations."""
    return getattr(e, "strerror", None) or str(e)
