"""Every transport behind one table: the pipeline's calls and the few object operations the fan-out needs.

The pipeline's: ``open_source``, ``check_sink``, ``open_sink`` and ``stat``.
The pipeline opens its input and output only through here, so a new transport plugs in without touching
demux, engine or mux. A source is always seekable (remote ones through ranged reads, never a download). A
sink is all-or-nothing: ``commit`` makes the output appear, ``abort`` (or an exception inside the ``with``
block) leaves nothing behind; ``sink.seekable`` is False for S3, which tells the muxer to write a format that
never seeks back (fragmented mp4, Matroska/WebM as they are). An *exclusive* sink never replaces an existing
output: it refuses one that is there before any work, and publishes conditionally (``OutputExists``).

The fan-out's, on the small objects of its work area beside the output (``streamup.fanout.workarea``):
``exists``, ``read``, ``create_exclusive`` (S3 ``If-None-Match: *``; locally a link into place, the same
conditional publish an exclusive sink makes), ``make_folder`` and ``remove_prefix``. Their failures are
``OutputError``: the objects belong to an output being made.

Supported: local paths, ``s3://bucket/key`` (in and out), ``https://`` / ``http://`` (in only, e.g. a
presigned URL). Each scheme is registered once in ``TRANSPORTS`` (as smart_open's ``transport.py`` does): a
module implementing the calls it supports, imported on first use so that a local run never imports boto3.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from streamup.errors import InputError, OutputError
from streamup.storage.base import ObjectInfo, Sink, Source, extension

__all__ = ["TRANSPORTS", "ObjectInfo", "Sink", "Source", "check_sink", "create_exclusive", "exists",
           "extension", "make_folder", "open_sink", "open_source", "read", "remove_prefix", "stat",
           "transient"]

#: scheme → the module that implements it ("" = a local path). A module without ``open_sink`` is read-only
#: and offers none of the fan-out's operations.
TRANSPORTS = {
    "": "streamup.storage.local",
    "file": "streamup.storage.local",
    "s3": "streamup.storage.s3",
    "http": "streamup.storage.http",
    "https": "streamup.storage.http",
}


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and head.isalnum() else ""


def _transport(uri: str, side: type[InputError] | type[OutputError], call: str) -> ModuleType:
    scheme = _scheme(uri)
    name = TRANSPORTS.get(scheme)
    if name is None:
        known = ", ".join(f"{s}://" for s in TRANSPORTS if s)
        raise side(f"unsupported URI scheme {scheme}:// (local paths, {known}): {uri}")
    module = importlib.import_module(name)
    if not hasattr(module, call):
        what = "cannot write to" if call == "open_sink" else f"no {call} for"
        raise side(f"{what} {scheme}:// URLs (use s3://bucket/key or a local path): {uri}")
    return module


def open_source(uri: str) -> Source:
    """Open ``uri`` for reading; raises ``InputError`` with one line when it is missing or unreadable."""
    return _transport(uri, InputError, "open_source").open_source(uri)


def check_sink(uri: str, *, exclusive: bool = False) -> None:
    """Raise ``OutputError`` now if ``uri`` cannot be written (``OutputExists`` if ``exclusive`` and it is
    there already), leaving nothing behind.

    The sink itself is opened late (the object's metadata names the model, known only once the engine is
    built), and building the engine can mean importing torch, loading or downloading weights: this lets the
    pipeline refuse a missing bucket or an unwritable folder in seconds, before any of that.
    """
    _transport(uri, OutputError, "open_sink").check_sink(uri, exclusive=exclusive)


def open_sink(
    uri: str,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    exclusive: bool = False,
) -> Sink:
    """Prepare ``uri`` for writing; raises ``OutputError`` at once when it cannot be written.

    ``content_type`` and ``metadata`` (source, model, scale, version, job id...) are stored on S3 objects; a
    local file has nowhere to keep them. ``exclusive`` makes ``commit`` fail with ``OutputExists`` rather
    than replace an object that appeared meanwhile.
    """
    module = _transport(uri, OutputError, "open_sink")
    return module.open_sink(uri, content_type=content_type, metadata=metadata, exclusive=exclusive)


def stat(uri: str) -> ObjectInfo | None:
    """The object at ``uri`` (size, metadata, ETag), or None when there is none."""
    return _transport(uri, InputError, "stat").stat(uri)


def exists(uri: str) -> bool:
    """Whether an object (or a local folder) is at ``uri``."""
    return _transport(uri, OutputError, "exists").exists(uri)


def read(uri: str) -> bytes | None:
    """A small object's bytes in one request, or None when there is none."""
    return _transport(uri, OutputError, "read").read(uri)


def create_exclusive(uri: str, data: bytes) -> bool:
    """Create the object ``uri`` holding ``data`` unless one is there: True if this call created it, False
    if another writer had (its object is left as it is). Two racing callers never both get True."""
    return _transport(uri, OutputError, "create_exclusive").create_exclusive(uri, data)


def make_folder(uri: str) -> None:
    """Make the folder ``uri`` (and its parents) so that objects and sinks can be created in it; nothing to
    do on S3, where a key needs no folder."""
    _transport(uri, OutputError, "make_folder").make_folder(uri)


def remove_prefix(uri: str) -> None:
    """Remove the folder ``uri`` (S3: every object under ``uri/``) and all it holds; one that is not there
    is no error."""
    _transport(uri, OutputError, "remove_prefix").remove_prefix(uri)


def transient(error: BaseException) -> bool | None:
    """Whether a failure was the world's (True: 5xx, throttling, network; worth a retry), the request's
    (False: a 4xx refusal) or no remote failure at all (None), read from the error's chain."""
    from streamup.storage import aws  # boto: only once something failed, and only where it is installed

    return aws.transient(error)
