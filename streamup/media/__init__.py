"""Containers and codecs: reading a source into RGB frames and passthrough packets, writing the output."""

from __future__ import annotations

import av
from av.sidedata.sidedata import Type


def ffmpeg_reason(e: BaseException) -> str:
    """FFmpeg's own words for an error, without PyAV's errno and function-name decorations."""
    return getattr(e, "strerror", None) or str(e)


def side_data(frame: av.VideoFrame, name: str) -> bytes | None:
    """The payload of a decoded frame's side data of one type (``DISPLAYMATRIX``, ``CONTENT_LIGHT_LEVEL``...).

    Looked up by type because the container changed under a patch release: PyAV 18.1.0 iterates the entries,
    18.1.1 made it a mapping whose iteration yields the types and whose ``len`` and integer indexing disagree
    when a type repeats (our CI took 18.1.1: every rotation and HDR read failed). ``get(Type)`` means the same
    in both. A type this PyAV does not know is absent.
    """
    kind = Type.__members__.get(name)
    entry = None if kind is None else frame.side_data.get(kind)
    return None if entry is None else bytes(entry)
