"""The two ends of every path through the pipeline level, each opened one way: a source read, a sink written.

A single run (``run.upscale``) decodes its source and encodes into its sink; a stitch (``remux.stitch``)
takes the same source's video description and its audio and subtitle packets, and copies already-encoded
video into the same kind of sink; a fan-out plan and a segment's record read packets only. Each end is
opened here once, so every path names its input and output in the same words (``InputError`` for a source
that is no readable video), counts the same bytes (``flow.Counted``), sets the same content type and
metadata, and publishes or removes its output by the same rule (``Encoder.finishing`` inside the sink: the
object appears only when encoding closed cleanly, and nothing is left when anything inside raised).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import av

from streamup import storage
from streamup.errors import InputError, StreamupError
from streamup.media import ffmpeg_reason, mux
from streamup.media.demux import Decoder
from streamup.media.mux import Encoder, EncodeSettings
from streamup.pipeline.flow import Counted


@contextlib.contextmanager
def decoding(uri: str, *, deinterlace: str = "auto") -> Iterator[tuple[Decoder, Counted]]:
    """``uri`` opened and its first video frame decoded (``InputError`` when it is no usable video): the
    decoder, and the reader under it that counts the bytes read. The decoder is closed and the source
    released on the way out, whatever happened inside."""
    with storage.open_source(uri) as source:
        reader = Counted(source.file)
        decoder = Decoder(reader, source.name, deinterlace=deinterlace)  # type: ignore[arg-type]
        try:
            yield decoder, reader
        finally:
            decoder.close()


@contextlib.contextmanager
def demuxing(uri: str, *, blame: type[StreamupError] = InputError) -> Iterator[Any]:
    """``uri``'s container open for reading packets, nothing decoded. A failure to open it is ``blame``'s:
    a source that is no video is the input's fault, a segment the fan-out wrote is the output's."""
    with storage.open_source(uri) as source:
        try:
            container = av.open(source.file, mode="r")  # type: ignore[arg-type]  # a file in all but name
        except (av.FFmpegError, OSError, ValueError) as e:
            raise blame(f"not a readable video: {uri} ({ffmpeg_reason(e)})") from None
        with container:
            yield container


@contextlib.contextmanager
def encoding(
    uri: str,
    like: Decoder,
    *,
    scale: int = 1,
    settings: EncodeSettings | None = None,
    copy_video: Any = None,
    metadata: Mapping[str, str] | None = None,
    exclusive: bool = False,
) -> Iterator[tuple[Encoder, Counted]]:
    """A sink at ``uri`` and an encoder into it shaped ``like`` the source's decoder (its video ``scale``
    times larger, its audio and subtitle streams carried over), and the writer between them that counts the
    bytes written. ``copy_video`` (a stream whose packets are written as they are) replaces the video
    encoder: the stitch. The sink gets the container's content type and ``metadata``; ``exclusive`` never
    replaces an existing object (``OutputExists``).

    The output is published when the block ends cleanly (encoder closed, sink committed) and removed when it
    raises (encoder aborted, sink aborted): a failed or cancelled path leaves nothing.
    """
    content_type = mux.CONTENT_TYPES[storage.extension(uri)]
    with storage.open_sink(uri, content_type=content_type, metadata=dict(metadata or {}),
                           exclusive=exclusive) as sink:
        writer = Counted(sink.file)
        encoder = Encoder(writer, sink.extension, seekable=sink.seekable,  # type: ignore[arg-type]
                          video=like.info, scale=scale, passthrough=like.passthrough,
                          settings=settings or EncodeSettings(), copy_video=copy_video)
        with encoder.finishing():
            yield encoder, writer
