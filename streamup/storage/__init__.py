"""Every transport behind two calls: ``open_source`` to read a video, ``open_sink`` to write one.

The pipeline opens its input and output only through here, so a new transport plugs in without touching
demux, engine or mux. A source is always seekable (remote ones through ranged reads, never a download). A
sink is all-or-nothing: ``commit`` makes the output appear, ``abort`` (or an exception inside the ``with``
block) leaves nothing behind; ``sink.seekable`` is False for S3, which tells the muxer to write a format that
never seeks back (fragmented mp4, Matroska/WebM as they are).

Supported: local paths, ``s3://bucket/key`` (in and out), ``https://`` / ``http://`` (in only, e.g. a
presigned URL).
"""

from __future__ import annotations

from streamup.errors import OutputError
from streamup.storage.base import Sink, Source
from streamup.storage.local import LocalSink, check_local_destination, open_local_source

__all__ = ["Sink", "Source", "check_sink", "open_sink", "open_source"]


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and head.isalnum() else ""


def open_source(uri: str) -> Source:
    """Open ``uri`` for reading; raises ``InputError`` with one line when it is missing or unreadable."""
    scheme = _scheme(uri)
    if scheme == "s3":
        from streamup.storage.s3 import open_s3_source

        return open_s3_source(uri)
    if scheme in ("http", "https"):
        from streamup.storage.http import open_http_source

        return open_http_source(uri)
    return open_local_source(uri)


def check_sink(uri: str) -> None:
    """Raise ``OutputError`` now if ``uri`` cannot be written, leaving nothing behind.

    The sink itself is opened late (the object's metadata names the model, known only once the engine is
    built), and building the engine can mean importing torch, loading or downloading weights: this lets the
    pipeline refuse a missing bucket or an unwritable folder in seconds, before any of that.
    """
    scheme = _scheme(uri)
    if scheme == "s3":
        from streamup.storage.s3 import check_s3_destination

        check_s3_destination(uri)
    elif scheme in ("http", "https"):
        raise OutputError(f"cannot write to {scheme}:// URLs (use s3://bucket/key or a local path): {uri}")
    else:
        check_local_destination(uri)


def open_sink(uri: str, *, content_type: str | None = None, metadata: dict[str, str] | None = None) -> Sink:
    """Prepare ``uri`` for writing; raises ``OutputError`` at once when it cannot be written.

    ``content_type`` and ``metadata`` (source, model, scale, version, ...) are stored on S3 objects; a local
    file has nowhere to keep them.
    """
    scheme = _scheme(uri)
    if scheme == "s3":
        from streamup.storage.s3 import S3Sink

        return S3Sink(uri, content_type=content_type, metadata=metadata)
    if scheme in ("http", "https"):
        check_sink(uri)
    return LocalSink(uri)
