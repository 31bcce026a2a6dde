"""Every transport behind two calls: ``open_source`` to read a video, ``open_sink`` to write one.

The pipeline opens its input and output only through here, so a new transport (S3, HTTPS, ...) plugs in
without touching demux, engine or mux. A sink is all-or-nothing: ``commit`` makes the output appear, ``abort``
(or an exception inside the ``with`` block) leaves nothing behind.
"""

from __future__ import annotations

from streamup.storage.base import Sink, Source
from streamup.storage.local import LocalSink, open_local_source

__all__ = ["Sink", "Source", "open_sink", "open_source"]


def open_source(uri: str) -> Source:
    """Open ``uri`` for reading; raises ``InputError`` with one line when it is missing or unreadable."""
    return open_local_source(uri)


def open_sink(uri: str, *, content_type: str | None = None, metadata: dict[str, str] | None = None) -> Sink:
    """Prepare ``uri`` for writing; raises ``OutputError`` at once when it cannot be written."""
    return LocalSink(uri)
