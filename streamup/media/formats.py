"""Pixel formats: what a source's pixels are, and which encoder and pixel format keep all of it.

A master (ProRes 4:2:2 HQ, ProRes 4444 with alpha, 4:4:4 or 12-bit HEVC, RGB FFV1) loses what made it a
master if the output is the delivery default, 8/10-bit 4:2:0. So the output keeps the source's layout: chroma
subsampling, bit depth, RGB-ness and alpha. The engine sees RGB of enough depth (16-bit for anything deeper
than 8, RGBA when there is alpha); the encoder gets the pixel format closest to the source among those the
encoder accepts, never one that loses chroma, depth or alpha unless the user asked for it with ``--pix-fmt``.

Defaults, per output container: ProRes into ``.mov`` stays ProRes of the same profile; otherwise x264 for
8-bit YUV (High 4:2:2 / High 4:4:4 by pixel format), x264rgb for 8-bit RGB, x265 for deeper video (Main 10 /
4:2:2 10 / 4:4:4 12, RGB as GBR planes), FFV1 where neither carries the layout (16-bit, 4:1:1; ``.mkv``),
VP9 in ``.webm``; alpha goes to ProRes 4444, QuickTime RLE or PNG in ``.mov``, FFV1 in ``.mkv`` and VP9 in
``.webm``. Among the candidates, one with the source's exact layout wins over one with more chroma. What
cannot be kept is a ``UsageError`` raised before any frame is decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache

import av

from streamup.errors import UsageError

log = logging.getLogger("streamup")


@dataclass(frozen=True)
class Layout:
    """The shape of a pixel format: ``chroma`` is ``RGB``, ``gray`` or the J:a:b subsampling of YUV."""

    chroma: str
    depth: int
    alpha: bool

    @property
    def rgb(self) -> bool:
        return self.chroma == "RGB"

    def describe(self) -> str:
        return f"{self.chroma} {self.depth}-bit{' with alpha' if self.alpha else ''}"


@cache
def layout(pix_fmt: str) -> Layout:
    """Chroma, depth and alpha of a pixel format name (``yuv422p10le`` → 4:2:2, 10, no alpha)."""
    fmt = av.VideoFormat(pix_fmt)
    comps = fmt.components
    alpha = any(c.is_alpha for c in comps)
    depth = max(c.bits for c in comps)
    if fmt.is_rgb:
        chroma = "RGB"
    elif sum(not c.is_alpha for c in comps) == 1:
        chroma = "gray"
    else:
        w, h = fmt.chroma_width(16), fmt.chroma_height(16)
        chroma = f"4:{w // 4}:{w // 4 if h == 16 else 0}"
    return Layout(chroma, depth, alpha)


def rgb_format(source: Layout) -> str:
    """The RGB(A) layout the engine sees: 8 bits per channel for 8-bit video, full 16 bits for anything deeper
    (10, 12, 16-bit sources all fit without loss); RGBA when the source has alpha."""
    deep = source.depth > 8
    if source.alpha:
        return "rgba64le" if deep else "rgba"
    return "rgb48le" if deep else "rgb24"


# Encodable pixel formats that are never a good target: full-range aliases, semi-planar twins of a planar
# format, palettes, float, bit-stream and big-endian layouts (png's are the exception: the only ones it has).
_UNWANTED = ("yuvj", "nv", "p0", "p2", "p4", "pal", "mono", "f16", "f32", "bayer", "ya", "x2", "y2")


# Formats an encoder lists but refuses to open with (measured, libvpx 1.x in PyAV 18.1: "Invalid argument").
_REFUSED = {"libvpx-vp9": ("yuva422p", "yuva444p", "gbrap")}
# Alpha that only comes at a lower quality: libvpx encodes alpha as a second 4:2:0 8-bit stream (what
# browsers play as transparent WebM), so an alpha source in .webm gives up chroma or depth, with a warning.
_ALPHA_ONLY_AS = {"libvpx-vp9": "yuva420p"}


def _candidates(codec: str) -> list[str]:
    formats = [f.name for f in av.Codec(codec, "w").video_formats or []]
    refused = _REFUSED.get(codec, ())
    return [f for f in formats if not f.startswith(_UNWANTED) and f not in refused
            and (codec == "png" or not f.endswith("be"))]


def _chroma_rank(want: Layout, have: Layout) -> int | None:
    """0 = the same chroma; 1 = more chroma than the source (no loss); None = it would lose chroma."""
    if want.chroma == have.chroma:
        return 0
    order = {"gray": 0, "4:1:0": 1, "4:1:1": 1, "4:2:0": 1, "4:2:2": 2, "4:4:0": 2, "4:4:4": 3, "RGB": 3}
    if want.rgb and have.chroma == "4:4:4":
        return 1  # 4:4:4 YUV with a real matrix: lossless in chroma, the next best thing to RGB
    if want.chroma in ("4:1:1", "4:4:0") and have.chroma in ("4:2:2", "4:4:4"):
        return 1
    return 1 if order[have.chroma] > order[want.chroma] and not have.rgb else None


# Encoders whose input is shallower than their bitstream: prores_ks takes 10-bit samples for every profile,
# yet a ProRes 4444 stream decodes as 12-bit, as the source did.
_INPUT_DEPTH_CAP = {"prores_ks": 10}


def pick_pix_fmt(codec: str, want: Layout, *, exact_chroma: bool = False) -> str | None:
    """The pixel format of ``codec`` that keeps ``want`` best (same chroma, then the least depth that is not
    less, in the encoder's own order of preference), or None when every one would lose something (or, with
    ``exact_chroma``, when none has the source's very chroma layout)."""
    want = Layout(want.chroma, min(want.depth, _INPUT_DEPTH_CAP.get(codec, want.depth)), want.alpha)
    best: tuple[tuple[int, int, int], str] | None = None
    for i, name in enumerate(_candidates(codec)):
        have = layout(name)
        rank = _chroma_rank(want, have)
        if rank is None or have.depth < want.depth or have.alpha != want.alpha or (exact_chroma and rank):
            continue
        key = (rank, have.depth, i)
        if best is None or key < best[0]:
            best = key, name
    return best[1] if best else None


def _pick_or_fallback(codec: str, want: Layout) -> str | None:
    fallback = _ALPHA_ONLY_AS.get(codec) if want.alpha else None
    return pick_pix_fmt(codec, want) or fallback


@dataclass(frozen=True)
class SourceFormat:
    """What the decoder found: codec (``prores``), its profile name (``HQ``), the decoded pixel format."""

    codec: str
    profile: str | None
    pix_fmt: str

    @property
    def layout(self) -> Layout:
        return layout(self.pix_fmt)


@dataclass(frozen=True)
class OutputFormat:
    """The encoder, its pixel format and options that make it carry the source's layout."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def alpha(self) -> bool:
        return layout(self.pix_fmt).alpha


_ALPHA_OUTPUTS = "(.mov ProRes 4444/qtrle/png, .mkv FFV1, .webm VP9)"
# ProRes profile names as the decoder reports them, lower-cased: prores_ks's profile option takes the same.
_PRORES_PROFILES = ("proxy", "lt", "standard", "hq", "4444", "4444xq")


def _default_codecs(container: str, want: Layout) -> list[str]:
    """Encoders to try in order for a source layout when the user named none."""
    if container == "webm":
        return ["libvpx-vp9"]
    if want.alpha:
        return {"mov": ["prores_ks", "qtrle", "png"], "matroska": ["ffv1"]}.get(container, [])
    lossless = ["ffv1"] if container == "matroska" else []
    if want.depth > 12:
        return lossless
    if want.rgb and want.depth <= 8:
        return ["libx264rgb", "libx265", *lossless]
    return ["libx264", "libx265", *lossless] if want.depth <= 8 else ["libx265", *lossless]


def choose(
    container: str,
    supported: Collection[str],
    source: SourceFormat,
    *,
    codec: str | None,
    pix_fmt: str | None,
    drop_alpha: bool,
) -> OutputFormat:
    """The output encoder and pixel format for ``source`` in ``container`` (``supported``: the codec names the
    muxer accepts). ``codec``/``pix_fmt`` are the user's overrides; raises ``UsageError`` for what cannot be
    carried."""
    want = source.layout
    if want.alpha and drop_alpha:
        want = Layout(want.chroma, want.depth, alpha=False)
    if pix_fmt is not None:
        _check_pix_fmt(pix_fmt)
    if codec is None:
        codec = _default_codec(container, supported, source, want, pix_fmt)
    if pix_fmt is None:
        pix_fmt = _pick_or_fallback(codec, want)
        if pix_fmt is None:
            raise UsageError(_cannot(codec, want, container, source.layout.alpha and not drop_alpha))
        if pix_fmt == _ALPHA_ONLY_AS.get(codec) and pick_pix_fmt(codec, want) is None:
            log.warning("%s stores alpha only as %s: the source's %s pixels lose chroma or depth", codec,
                        pix_fmt, want.describe())
    elif pix_fmt not in [f.name for f in av.Codec(codec, "w").video_formats or []]:
        raise UsageError(f"codec {codec!r} cannot encode --pix-fmt {pix_fmt}; it takes "
                         f"{', '.join(_candidates(codec))}")
    if source.layout.alpha and not drop_alpha and not layout(pix_fmt).alpha:
        raise UsageError(_cannot(codec, want, container, alpha=True))
    return OutputFormat(codec, pix_fmt, _codec_options(codec, pix_fmt, source))


def _default_codec(
    container: str, supported: Collection[str], source: SourceFormat, want: Layout, pix_fmt: str | None
) -> str:
    candidates = _default_codecs(container, want)
    if source.codec == "prores" and container == "mov":
        candidates.insert(0, "prores_ks")  # a ProRes master stays ProRes (same profile) in a QuickTime file
    candidates = [c for c in candidates if _codec_id(c) in supported]
    if pix_fmt is not None:
        for name in candidates:
            if pix_fmt in [f.name for f in av.Codec(name, "w").video_formats or []]:
                return name
    else:
        # First the encoder that has the source's exact layout (DV's 4:1:1: FFV1 before x264's 4:2:2).
        for name in candidates:
            if pick_pix_fmt(name, want, exact_chroma=True) is not None:
                return name
        for name in candidates:
            if _pick_or_fallback(name, want) is not None:
                return name
    what = f"--pix-fmt {pix_fmt}" if pix_fmt else want.describe()
    hint = f"an alpha-capable output {_ALPHA_OUTPUTS} or pass --drop-alpha" if want.alpha else "--pix-fmt"
    raise UsageError(f"no encoder can store {what} in a {container} container; choose another container or "
                     f"{hint}")


def _codec_id(encoder: str) -> str:
    """The codec an encoder writes, as muxers name it (``libx264rgb`` → ``h264``, ``prores_ks`` → prores)."""
    return av.Codec(encoder, "w").canonical_name


def _check_pix_fmt(pix_fmt: str) -> None:
    try:
        av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        raise UsageError(f"unknown --pix-fmt {pix_fmt!r}") from None


def _cannot(codec: str, want: Layout, container: str, alpha: bool) -> str:
    if alpha:
        return (f"{codec} in {container} cannot carry the source's alpha channel; use an alpha-capable "
                f"output {_ALPHA_OUTPUTS} or pass --drop-alpha")
    return (f"codec {codec!r} cannot keep the source's {want.describe()} pixels; pick another --codec, or "
            f"--pix-fmt (one of {', '.join(_candidates(codec))}) to accept the loss")


def _codec_options(codec: str, pix_fmt: str, source: SourceFormat) -> dict[str, str]:
    """ProRes needs its profile named: the source's when it is ProRes, else 4444 for 4:4:4, HQ for 4:2:2."""
    if codec != "prores_ks":
        return {}
    four_four = layout(pix_fmt).chroma == "4:4:4"
    profile = (source.profile or "").lower() if source.codec == "prores" else ""
    if profile not in _PRORES_PROFILES or profile.startswith("4444") != four_four:
        profile = "4444" if four_four else "hq"
    return {"profile": profile}
