"""Studio and archive test clips, made at test time with Debian's ffmpeg from ../shared/media (not committed).

Each clip is 10-12 frames of real footage, small (320x180 or 352x288), so a whole upscale with the lanczos
model takes about a second. ``make(name, folder)`` builds one clip into ``folder`` (once per folder) and
returns its path; ``RECIPES`` lists what each one is.

Interlaced clips are truly interlaced: two consecutive progressive frames of camera footage (the bikes clip,
which has motion in every frame) are woven into one with ``tinterlace=interleave_top`` after declaring the
footage 50 fps, so each output frame holds two fields 1/50 s apart, and encoded as interlaced (MPEG-2
``+ildct+ilme``, H.264 MBAFF, top field first). ``idet`` reports every frame of them as TFF.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import media

_FF = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
_MAIN = "main_h264_aac_640x360.mp4"  # Big Buck Bunny, AAC audio
_BIKES = "noaudio_h264.mp4"  # camera footage, motion everywhere: what shows combing
_SMALL = "scale=320:180:flags=area"
# 10 frames of the main clip (0.4 s at 24 fps) with its audio.
_CUT = ["-t", "0.4"]
_WEAVE = "setpts=N/(50*TB),fps=50,tinterlace=interleave_top"
# HDR10 as a mastering house writes it: BT.2020 primaries, PQ, a 1000-nit P3 mastering display, MaxCLL 1000.
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
MAX_CLL = "1000,400"
_HDR_TAGS = ["-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]

# name → (what it is, ffmpeg arguments after the inputs). Inputs: the main clip, plus the bikes clip for
# interlaced ones (video from bikes, audio from main).
RECIPES: dict[str, tuple[str, list[str]]] = {
    "prores422hq.mov": ("ProRes 422 HQ, yuv422p10le, PCM audio", [
        "-vf", _SMALL, *_CUT, "-c:v", "prores_ks", "-profile:v", "hq", "-pix_fmt", "yuv422p10le",
        "-c:a", "pcm_s16le"]),
    "prores4444_alpha.mov": ("ProRes 4444 with an alpha ramp (transparent left → opaque right), AAC", [
        "-vf", f"{_SMALL},format=yuva444p10le,geq=lum='lum(X,Y)':cb='cb(X,Y)':cr='cr(X,Y)':a='X*1023/(W-1)'",
        *_CUT, "-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le", "-c:a", "copy"]),
    "h264_444.mp4": ("H.264 High 4:4:4 Predictive, yuv444p, AAC", [
        "-vf", _SMALL, *_CUT, "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv444p",
        "-c:a", "copy"]),
    "hevc_422_12bit.mkv": ("HEVC Main 4:2:2 12, yuv422p12le, AAC", [
        "-vf", _SMALL, *_CUT, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
        "-pix_fmt", "yuv422p12le", "-c:a", "copy"]),
    "ffv1_rgb.mkv": ("FFV1 RGB (bgr0, matrix tag GBR), AAC", [
        "-vf", f"{_SMALL},format=bgr0", *_CUT, "-c:v", "ffv1", "-c:a", "copy"]),
    "qtrle_alpha.mov": ("QuickTime RLE ARGB with an alpha ramp (top transparent → bottom opaque)", [
        "-vf", f"{_SMALL},format=argb,geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='Y*255/(H-1)'", *_CUT,
        "-c:v", "qtrle", "-an"]),
    "hdr10.mp4": ("HEVC Main 10 HDR10: PQ, BT.2020, mastering display and MaxCLL/MaxFALL in SEI, AAC", [
        "-vf", f"{_SMALL},format=yuv420p10le", *_CUT, "-c:v", "libx265", "-preset", "ultrafast",
        "-x265-params", f"log-level=error:hdr10=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL}",
        *_HDR_TAGS, "-tag:v", "hvc1", "-c:a", "copy"]),
    "hlg.mkv": ("HEVC Main 10 HLG (arib-std-b67), BT.2020, AAC", [
        "-vf", f"{_SMALL},format=yuv420p10le", *_CUT, "-c:v", "libx265", "-preset", "ultrafast",
        "-x265-params", "log-level=error", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
        "-colorspace", "bt2020nc", "-c:a", "copy"]),
    "interlaced_dvd.mpg": ("MPEG-PS: MPEG-2 interlaced TFF 352x288 25i, 16:9 anamorphic (SAR 16:11), MP2", [
        "-map", "1:v", "-map", "0:a", "-vf", f"scale=352:288:flags=area,{_WEAVE},setsar=16/11",
        "-t", "0.48", "-c:v", "mpeg2video", "-flags", "+ilme+ildct", "-top", "1",
        "-q:v", "3", "-c:a", "mp2", "-b:a", "128k"]),
    "interlaced_h264.ts": ("MPEG-TS: H.264 MBAFF interlaced TFF 320x180 25i, AAC in ADTS", [
        "-map", "1:v", "-map", "0:a", "-vf", f"{_SMALL},{_WEAVE}", "-t", "0.48",
        "-c:v", "libx264", "-preset", "veryfast", "-flags", "+ilme+ildct", "-x264-params", "tff=1",
        "-c:a", "aac", "-b:a", "96k"]),
    "mpeg4.avi": ("AVI: MPEG-4 part 2 (no B-frames), MP3", [
        "-vf", _SMALL, *_CUT, "-c:v", "mpeg4", "-bf", "0", "-q:v", "3", "-c:a", "libmp3lame", "-b:a", "96k"]),
    "h264_420.mp4": ("H.264 4:2:0 8-bit, the same picture as the wide formats (the speed baseline)", [
        "-vf", _SMALL, *_CUT, "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-c:a", "copy"]),
}


def make(name: str, folder: Path) -> Path:
    """Build clip ``name`` into ``folder`` unless it is already there; returns its path."""
    out = folder / name
    if not out.exists():
        inputs = ["-i", str(media(_MAIN))]
        if "interlaced" in name:
            inputs += ["-i", str(media(_BIKES))]
        partial = folder / f"partial-{name}"
        subprocess.run([*_FF, *inputs, *RECIPES[name][1], str(partial)], check=True)
        partial.rename(out)
    return out
