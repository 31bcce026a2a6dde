"""Writing the output: encode upscaled frames, and mux the source's audio/subtitle packets untouched.

Audio is never decoded: each packet is copied byte for byte with its own timestamps, so the sound cannot
drift or lose quality. The video keeps each source frame's presentation time (variable frame rate survives),
the source's colour tags, rotation (display matrix) and sample aspect ratio. What the output container cannot
hold is decided before the first frame: an audio stream that does not fit is an error (dropping sound
silently is never right), a subtitle stream that does not fit is dropped with a warning naming it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np

from streamup.errors import OutputError, UsageError
from streamup.media import colour, ffmpeg_reason, formats, hdr
from streamup.media.adts import AdtsToAsc
from streamup.media.demux import VideoInfo

log = logging.getLogger("streamup")

# Output extension → FFmpeg muxer, and the MIME type a sink can store with the object.
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
CONTENT_TYPES = {
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".webm": "video/webm"
}

# Fragmented mp4 needs no seek back to write its index: what a non-seekable sink (an S3 upload) requires.
# delay_moov holds the moov until the first fragment is cut, so it can carry the edit list (B-frame delay,
# AAC priming); without it every timestamp shifts by the B-frame delay (measured: +83 ms, docs/storage.md).
# frag_duration (µs) also cuts a fragment every 2 s: the muxer holds a whole fragment in memory, and with
# keyframe cuts alone that is a whole GOP (x264: up to 250 frames) before the upload sees a byte.
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof+delay_moov",
               "frag_duration": "2000000"}


@dataclass(frozen=True)
class EncodeSettings:
    """The user's say in the video encode; ``None`` picks the container's default."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    #: One segment of a fanned-out job: the bitstream headers must not depend on the content, so that
    #: segments encoded apart concatenate (x264 ``stitchable=1``; FFV1's headers never do).
    stitchable: bool = False
    #: Output pixel format (``--pix-fmt``); None keeps the source's chroma, depth, RGB-ness and alpha.
    pix_fmt: str | None = None
    #: Write no alpha channel even when the source has one (``--drop-alpha``).
    drop_alpha: bool = False


@dataclass(frozen=True)
class OutputInfo:
    """What was written, for the result a caller gets back."""

    container: str
    codec: str
    pix_fmt: str
    width: int
    height: int
    dropped: tuple[str, ...]


def container_for(extension: str) -> str:
    """The muxer for an output extension; anything else is a usage error, raised before any work."""
    try:
        return CONTAINERS[extension]
    except KeyError:
        known = " ".join(CONTAINERS)
        raise UsageError(f"unsupported output extension {extension or '(none)'!r}; use {known}") from None


# Per encoder: (default crf, the option --preset sets, its default, fixed options). --crf and --preset mean
# the same to a user whatever the encoder: x264-style preset names also drive VP9's cpu-used and SVT-AV1's
# numeric preset (a number is passed through as it is).
_ENCODERS: dict[str, tuple[int | None, str | None, str | None, dict[str, str]]] = {
    "libx264": (18, "preset", "medium", {}),
    "libx264rgb": (18, "preset", "medium", {}),
    "libx265": (20, "preset", "medium", {"x265-params": "log-level=error"}),
    "libvpx-vp9": (30, "cpu-used", "medium", {"b": "0", "row-mt": "1", "deadline": "good"}),
    "libsvtav1": (30, "preset", "medium", {}),
    "ffv1": (None, None, None, {"level": "3", "slicecrc": "1"}),
}
_CRF_MAX = {"libx264": 51, "libx264rgb": 51, "libx265": 51, "libvpx-vp9": 63, "libsvtav1": 63}
_PRESET_NAMES = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
)
_NUMERIC_PRESETS = {
    "libvpx-vp9": ("8", "7", "6", "5", "5", "4", "3", "2", "1"),
    "libsvtav1": ("12", "11", "10", "9", "9", "8", "6", "4", "2"),
}


# x264 holds back rc-lookahead frames (its preset's value below), plus its sync lookahead (bframes + 1 with
# threads) and one per extra frame thread. Each held frame costs ~3.2 bytes per pixel, more than its 1.5 of
# 4:2:0 pixels (x264 pads it and keeps lookahead planes beside it): peak RSS of benchmarks.memory.peak, a
# lanczos x4 run of 30 frames of 1080p (8K output), with rc-lookahead forced to 10 and to 4 (issue 10, Zen 4
# EPYC): 3.95 vs 3.31 GB, 107 MB per frame. So preset medium's 40 frames hold 4.3 GB at 8K and 1.1 GB at
# 4K. The lookahead is capped to what ENCODER_LOOKAHEAD_BYTES holds (5 frames at 8K, 20 at 4K; 1080p keeps
# its 40) and, once capped, the sync lookahead is dropped too. Peak RSS then levels off after ~20 frames at
# 8K (benchmarks.memory --fill).
ENCODER_LOOKAHEAD_BYTES = 512 << 20
_LOOKAHEAD_BYTES_PER_PIXEL = 3.2
_X264_LOOKAHEAD = {"ultrafast": 0, "superfast": 0, "veryfast": 10, "faster": 20, "fast": 30, "medium": 40,
                   "slow": 50, "slower": 60, "veryslow": 60, "placebo": 60}


def buffer_options(codec: str, settings: EncodeSettings, width: int, height: int) -> dict[str, str]:
    """Encoder options that bound what the encoder buffers, by the output's frame size (x264 only)."""
    if codec not in ("libx264", "libx264rgb"):
        return {}
    per_pixel = _LOOKAHEAD_BYTES_PER_PIXEL * (2 if codec == "libx264rgb" else 1)  # 4:4:4 RGB: twice 4:2:0
    cap = max(4, int(ENCODER_LOOKAHEAD_BYTES / (width * height * per_pixel)))
    if cap >= _X264_LOOKAHEAD.get(settings.preset or "medium", 40):
        return {}
    return {"rc-lookahead": str(cap), "x264-params": "sync-lookahead=0"}


def merge_options(options: dict[str, str], extra: dict[str, str]) -> None:
    """``extra`` into ``options``; an encoder's own parameter string (``x264-params``...) is appended to."""
    for key, value in extra.items():
        joined = key.endswith("-params") and options.get(key)
        options[key] = f"{joined}:{value}" if joined else value


def encoder_options(codec: str, settings: EncodeSettings) -> dict[str, str]:
    """The encoder's own options for the user's settings; encoders clamp a wild crf silently, so we don't."""
    crf, preset_key, preset_default, fixed = _ENCODERS.get(codec, (None, None, None, {}))
    if settings.crf is not None and codec == "ffv1":
        raise UsageError("--crf does not apply to ffv1 (lossless)")
    if settings.crf is not None and not 0 <= settings.crf <= _CRF_MAX.get(codec, 63):
        raise UsageError(f"--crf {settings.crf} is out of range for {codec} (0-{_CRF_MAX.get(codec, 63)})")
    options = dict(fixed)
    if settings.stitchable and codec == "libx264":
        options["x264-params"] = "stitchable=1"
    if settings.crf is not None or crf is not None:
        options["crf"] = str(settings.crf if settings.crf is not None else crf)
    preset = settings.preset or preset_default
    if preset_key and preset:
        numeric = codec in _NUMERIC_PRESETS
        if preset not in _PRESET_NAMES and not (numeric and preset.isdigit()) and preset != "placebo":
            # checked here: x264 prints its own complaint straight to stderr, breaking the one-line error
            raise UsageError(f"unknown --preset {preset!r} for {codec}: one of {', '.join(_PRESET_NAMES)}"
                             + (" or a number" if numeric else ""))
        if numeric and preset in _PRESET_NAMES:
            preset = _NUMERIC_PRESETS[codec][_PRESET_NAMES.index(preset)]
        options[preset_key] = preset
    return options


class Encoder:
    """An output container: ``write_frame``/``write_packet`` in any interleaving, then ``close``."""

    def __init__(
        self,
        file: BinaryIO,
        extension: str,
        *,
        seekable: bool,
        video: VideoInfo,
        scale: int,
        passthrough: list[av.stream.Stream],
        settings: EncodeSettings,
        copy_video: av.stream.Stream | None = None,
    ) -> None:
        """``copy_video``: write already-encoded video with ``write_video_packet`` (stitching segments that
        this stream's container holds), no encoder; ``video`` still gives the time base, rotation, aspect."""
        self._format = container_for(extension)
        options = _FRAGMENTED if not seekable and self._format in ("mp4", "mov") else {}
        if self._format in ("matroska", "webm"):
            # By default lavf shifts every stream so none starts below zero: an mp4's AAC priming packet
            # (pts -21 ms) would move all timestamps by 21 ms. Matroska blocks hold signed offsets, so the
            # source times can be written as they are (mp4/mov keep them with edit lists anyway).
            options = {"avoid_negative_ts": "disabled"}
        try:
            self._out = av.open(file, mode="w", format=self._format, options=options)
        except av.FFmpegError as e:
            raise OutputError(f"cannot start {self._format} output: {e}") from None
        self._colour, self._alpha = video.colour, False  # what write_frame converts to; set by _add_video
        self._bsf: dict[int, AdtsToAsc] = {}
        try:
            self._copying = copy_video is not None
            self._video = (self._add_video(video, scale, settings) if copy_video is None
                           else self._copy_video(copy_video, video))
            self._streams, dropped = self._add_passthrough(passthrough)
        except BaseException:
            self.abort()
            raise
        self._time_base = video.time_base
        ctx = self._video.codec_context
        self.info = OutputInfo(self._format, ctx.name, ctx.pix_fmt, ctx.width, ctx.height, tuple(dropped))

    def _add_video(self, video: VideoInfo, scale: int, settings: EncodeSettings) -> av.VideoStream:
        _check_encoder(settings.codec, self._format, self._out.supported_codecs)
        plan = formats.choose(self._format, self._out.supported_codecs, video.source, codec=settings.codec,
                              pix_fmt=settings.pix_fmt, drop_alpha=settings.drop_alpha)
        codec = plan.codec
        options = {**encoder_options(codec, settings), **plan.options}
        merge_options(options, buffer_options(codec, settings, video.width * scale, video.height * scale))
        if video.hdr is not None:
            _add_hdr_params(options, codec, video.hdr)
        try:
            stream = self._out.add_stream(codec, rate=video.rate, options=options)
        except (av.FFmpegError, ValueError) as e:
            raise UsageError(f"codec {codec!r} cannot be used for {self._format} output ({e})") from None
        ctx = stream.codec_context
        ctx.width = video.width * scale
        ctx.height = video.height * scale
        ctx.pix_fmt = plan.pix_fmt
        ctx.time_base = video.time_base
        stream.time_base = video.time_base
        c = self._colour = colour.for_output(video.colour, formats.layout(plan.pix_fmt).rgb, video.width,
                                             video.height)
        self._alpha = plan.alpha
        ctx.colorspace, ctx.color_range = c.matrix, c.range
        ctx.color_primaries, ctx.color_trc = c.primaries, c.transfer
        if video.sample_aspect_ratio:
            ctx.sample_aspect_ratio = video.sample_aspect_ratio
            _set_container_sar(stream, video.sample_aspect_ratio)
        if video.display_matrix:
            stream.set_display_matrix(list(video.display_matrix))
        if codec == "libx265" and self._format in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # the tag Apple players require for HEVC
        try:
            ctx.open()  # now, so that a bad --crf/--preset is a usage error before any frame is decoded
        except (av.FFmpegError, ValueError) as e:
            raise UsageError(f"{codec} rejected the encode settings {options}: {ffmpeg_reason(e)}") from None
        return stream

    def _copy_video(self, template: av.stream.Stream, video: VideoInfo) -> av.VideoStream:
        codec = template.codec_context.name
        if codec not in self._out.supported_codecs:
            raise UsageError(f"{codec} video cannot be stored in a {self._format} container")
        stream = self._out.add_stream_from_template(template)
        stream.time_base = video.time_base
        if video.sample_aspect_ratio:
            _set_container_sar(stream, video.sample_aspect_ratio)
        if video.display_matrix:
            stream.set_display_matrix(list(video.display_matrix))
        if codec == "hevc" and self._format in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # as an encoded run tags it
        return stream  # type: ignore[return-value]

    def _add_passthrough(
        self, streams: list[av.stream.Stream]
    ) -> tuple[dict[int, av.stream.Stream], list[str]]:
        mapped: dict[int, av.stream.Stream] = {}
        dropped: list[str] = []
        for s in streams:
            codec = s.codec_context.codec.canonical_name if s.codec_context else "unknown"
            label = f"{s.type} stream #{s.index} ({codec}{', ' + s.language if s.language else ''})"
            if codec not in self._out.supported_codecs:
                if s.type == "audio":
                    raise UsageError(f"{label} cannot be stored in {self._format} without re-encoding; "
                                     "pick another output container (.mkv holds every audio codec)")
                log.warning("dropping %s: a %s container cannot hold it", label, self._format)
                dropped.append(label)
                continue
            mapped[s.index] = self._out.add_stream_from_template(s)
            if AdtsToAsc.needed(s):
                self._bsf[s.index] = AdtsToAsc(s, mapped[s.index])
        return mapped, dropped

    def write_frame(self, image: np.ndarray, pts: int | None) -> None:
        """An upscaled RGB or RGBA frame; the alpha channel is dropped when the output has none."""
        if image.shape[2] == 4 and not self._alpha:
            image = image[..., :3]
        frame = colour.from_rgb(image, self._colour, self._video.codec_context.pix_fmt)
        frame.pts = pts
        frame.time_base = self._time_base
        self._mux(self._video.encode(frame))

    def write_packet(self, packet: av.Packet) -> None:
        out = self._streams.get(packet.stream.index)
        if out is None:
            return
        bsf = self._bsf.get(packet.stream.index)
        packet.stream = out
        self._mux(bsf.filter(packet) if bsf else [packet])

    def write_video_packet(self, packet: av.Packet) -> None:
        """An encoded video packet (``copy_video`` mode), timestamps in the source's time base."""
        packet.stream = self._video
        self._mux([packet])

    def close(self) -> None:
        """Flush the encoder and write the trailer; the sink is complete only after this."""
        if not self._copying:
            self._mux(self._video.encode(None))
        try:
            self._out.close()
        except (av.FFmpegError, OSError) as e:
            raise OutputError(f"cannot finish {self._format} output: {e}") from None

    def abort(self) -> None:
        """Release the container after a failure; the sink deletes whatever was written."""
        with contextlib.suppress(av.FFmpegError, OSError, ValueError):
            self._out.close()

    @contextlib.contextmanager
    def finishing(self) -> Iterator[Encoder]:
        """Close (publish) the output when the block succeeds; abort it (nothing left behind) when it
        raises."""
        try:
            yield self
            self.close()
        except BaseException:
            self.abort()
            raise

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._out.mux(packets)
        except (av.FFmpegError, OSError) as e:  # OSError: the sink's own write (a full disk, a lost upload)
            raise OutputError(f"cannot write {self._format} output: {e}") from None


def _check_encoder(codec: str | None, container: str, supported: Collection[str]) -> None:
    """A ``--codec`` that is no video encoder, or that the container cannot hold: a usage error up front."""
    if codec is None:
        return
    try:
        encoder = av.Codec(codec, "w")
    except (av.FFmpegError, ValueError) as e:
        raise UsageError(f"codec {codec!r} cannot be used for {container} output ({e})") from None
    if encoder.type != "video":
        raise UsageError(f"codec {codec!r} is not a video encoder")
    if encoder.name not in supported and encoder.canonical_name not in supported:
        raise UsageError(f"codec {codec!r} cannot be stored in a {container} container")


def _add_hdr_params(options: dict[str, str], codec: str, metadata: hdr.StaticHdr) -> None:
    """Static HDR10 metadata into the encoder's own parameters (x265-params / x264-params), appended to any
    already there; an encoder without such parameters loses it, with a warning."""
    key = hdr.PARAMS_OPTION.get(codec)
    if key is None:
        log.warning("HDR10 static metadata (mastering display, content light level) is not written by %s; "
                    "encode with libx265 (the default for deep video in .mp4/.mov/.mkv) to keep it", codec)
        return
    merge_options(options, {key: metadata.encoder_params(codec)})


def _set_container_sar(stream: av.VideoStream, sar: Fraction) -> None:
    """Store the aspect ratio in the container too (``AVStream.sample_aspect_ratio``).

    H.264/HEVC carry it in the bitstream, but VP9 and FFV1 do not: Matroska/WebM then only know it from the
    stream field, which PyAV 18 cannot set. We write that field through the stream's ``AVStream*`` after
    checking that the layout is the one we expect (index and time base read back right), and confirm through
    PyAV's own getter; if anything differs we only warn, never write blind.
    """
    obj = ctypes.c_void_p.from_address(id(stream) + 24).value  # PyObject head (16) + Cython vtable (8)
    ok = bool(obj) and ctypes.c_int.from_address(obj + 8).value == stream.index
    tb = stream.time_base
    stored_tb = (ctypes.c_int.from_address(obj + 32).value, ctypes.c_int.from_address(obj + 36).value)
    ok = ok and tb is not None and stored_tb == (tb.numerator, tb.denominator)
    if ok:
        ctypes.c_int.from_address(obj + 72).value = sar.numerator
        ctypes.c_int.from_address(obj + 76).value = sar.denominator
    if not ok or stream.sample_aspect_ratio != sar:
        log.warning("sample aspect ratio %s kept only where the codec stores it (unknown PyAV layout)", sar)
