"""``streamup doctor``: can this machine run a job, and how fast will it be (GPU, bf16), before a job fails.

Each check is real work on the running installation (encode a frame, hash the weights), not a version
lookup, so "ok" means the thing was exercised. Problems that make every job fail are fatal (exit 1);
slow-but-working conditions (no GPU, no native bf16) are reported as notes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np

from streamup.config import Config
from streamup.media.mux import EncodeSettings, encoder_options

# Codecs a default job may need: encoders for every container's default, decoders for common inputs.
REQUIRED_ENCODERS = ("libx264", "libx265", "libvpx-vp9")
OPTIONAL_ENCODERS = ("ffv1",)
REQUIRED_DECODERS = ("h264", "hevc", "vp9", "aac")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | note | FAIL
    detail: str


def _encodes(codec: str) -> str | None:
    """Encode two frames with ``codec`` into memory; None on success, else FFmpeg's reason."""
    try:
        with av.open(io.BytesIO(), mode="w", format="matroska") as out:
            stream = out.add_stream(codec, rate=24, options=encoder_options(codec, EncodeSettings()))
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            for i in range(2):
                frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")
                frame = frame.reformat(format="yuv420p")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    except (av.FFmpegError, ValueError) as e:
        return str(e)
    return None


def _codec_checks() -> list[Check]:
    checks = [Check("pyav", "ok", f"PyAV {av.__version__}, FFmpeg {av.ffmpeg_version_info}")]
    for name in REQUIRED_ENCODERS + OPTIONAL_ENCODERS:
        problem = _encodes(name)
        if problem is None:
            checks.append(Check(f"encoder {name}", "ok", "encoded 2 frames"))
        else:
            status = "FAIL" if name in REQUIRED_ENCODERS else "note"
            checks.append(Check(f"encoder {name}", status, problem))
    for name in REQUIRED_DECODERS:
        try:
            av.Codec(name, "r")
            checks.append(Check(f"decoder {name}", "ok", "available"))
        except av.FFmpegError as e:
            checks.append(Check(f"decoder {name}", "FAIL", str(e)))
    return checks


def _engine_checks(weights_dirs: Sequence[str], config: Config) -> list[Check]:
    from streamup.engine import device, weights
    from streamup.engine.backends import DEFAULT_MODEL

    info = device.describe()
    checks = [Check("torch", "ok", f"torch {info['torch']} (CUDA build {info['cuda_build'] or 'none'})")]
    if info["cuda_available"]:
        checks.append(Check("cuda", "ok", ", ".join(info["cuda_devices"])))
    else:
        checks.append(Check("cuda", "note", "no CUDA device: GPU tiers fall back to the CPU"))
    bf16 = "native bf16" if info["cpu_bf16_fast"] else "no native bf16 (fp32 is faster here)"
    checks.append(Check("cpu", "ok", f"{info['cpu_capability']}, {info['cpu_threads']} threads, {bf16}"))
    checks.append(Check("auto placement", "ok", f"{info['auto_device']} {info['auto_precision']}"))
    for m in weights.list_models(weights_dirs, config=config):
        required = m.name == DEFAULT_MODEL
        if m.path is None:
            status, detail = ("FAIL" if required else "note"), "not present (downloaded on first use)"
        elif m.sha_ok:
            status, detail = "ok", f"{m.path} ({m.source}), checksum ok"
        else:
            status, detail = "FAIL", f"{m.path} ({m.source}): CHECKSUM MISMATCH"
        checks.append(Check(f"model {m.name}", status, detail))
    return checks


def run(weights_dirs: Sequence[str], config: Config) -> list[Check]:
    """All checks; the installation is usable when none is ``FAIL``. ``config`` says where weights are."""
    return _engine_checks(weights_dirs, config) + _codec_checks()
