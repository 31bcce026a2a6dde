"""Fan-out test clips: short, small cuts of the shared footage, each with the property a segment boundary
could break (B-frames, open GOPs, a 1001 time base, variable frame rate, AAC priming, two audio streams and
subtitles, rotation, 10-bit HEVC, one still picture), made once per session with Debian's ffmpeg. Audio is
stream-copied from the shared clips, so its packets are the real ones; video is re-encoded small (160x90) with
a 1 s GOP, so a 3 s clip holds three keyframes and the tests run in seconds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import media

_VIDEO = ["-vf", "scale=160:90", "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "24",
          "-keyint_min", "24", "-sc_threshold", "0"]

#: name → (input options, shared clip, output options)
RECIPES: dict[str, tuple[list[str], str, list[str]]] = {
    "bframes.mp4": ([], "main_h264_aac_640x360.mp4", ["-t", "3", *_VIDEO, "-c:a", "copy"]),
    "opengop.mp4": ([], "main_h264_aac_640x360.mp4", ["-t", "3", *_VIDEO, "-x264opts", "open-gop=1",
                                                      "-c:a", "copy"]),
    "ntsc.mp4": ([], "main_h264_aac_640x360.mp4",
                 ["-t", "3", "-vf", "scale=160:90,fps=30000/1001", "-c:v", "libx264", "-preset", "veryfast",
                  "-g", "30", "-sc_threshold", "0", "-video_track_timescale", "30000", "-c:a", "copy"]),
    "vfr.mp4": ([], "vfr_h264_aac.mp4", ["-fps_mode", "passthrough", *_VIDEO, "-c:a", "copy"]),
    "two_audio.mkv": ([], "two_audio_subs.mkv", ["-t", "3", "-map", "0", *_VIDEO, "-c:a", "copy",
                                                 "-c:s", "copy"]),
    "rotated.mp4": (["-noautorotate"], "rotated90_h264_aac.mp4", [*_VIDEO, "-c:a", "copy"]),
    "still.mp4": (["-loop", "1", "-framerate", "24"], "still_640x360.png",
                  ["-t", "3", *_VIDEO, "-pix_fmt", "yuv420p"]),  # one picture: a 3-segment run reuses it
    "hevc10.mp4": ([], "hevc_main10_bt709.mp4",
                   ["-t", "3", "-vf", "scale=160:90", "-c:v", "libx265", "-pix_fmt", "yuv420p10le",
                    "-x265-params", "log-level=error:keyint=24:min-keyint=24:scenecut=0", "-c:a", "copy"]),
}


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fanout-clips")
    made = {}
    for name, (before, shared, after) in RECIPES.items():
        out = folder / name
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *before,
                        "-i", str(media(shared)), *after, str(out)], check=True)
        made[name] = out
    return made
