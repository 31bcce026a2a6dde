"""What a caller can ask of one upscale run; the CLI, the worker and library users all build one of these."""

from __future__ import annotations

from dataclasses import dataclass

# The vocabulary every face and the engine share, stated once: the CLI's choices, the job parser's accepted
# values and the engine's checks all read these.
#: Enlargements streamup produces (the official models are x2 and x4; x4 networks serve x2 by a lanczos
#: downscale when no x2 sibling is installed).
SCALES = (2, 4)
#: Where a run may be asked to run: ``auto`` picks CUDA when present, else the CPU.
DEVICES = ("auto", "cpu", "gpu")
#: Devices a job (and a tier) names: the old system's vocabulary, without ``auto``.
JOB_DEVICES = ("cpu", "gpu")
#: Arithmetic of the network: ``auto`` is fp16 on CUDA, bf16 on a CPU that has it, else fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Reuse of unchanged pictures (``streamup.pipeline.reuse``): ``auto`` keeps the output of a tile whose input
#: did not change, where the engine can compute tiles alone; ``off`` computes every tile of every frame.
REUSE = ("auto", "off")


@dataclass(frozen=True)
class UpscaleOptions:
    """Options of one run. ``None`` means "the engine's or the container's measured default".

    ``model`` is an official model name (``realesr-animevideov3``, ``RealESRGAN_x4plus``, ...), a path to a
    ``.pth`` file, or ``lanczos`` (no network: an instant preview). ``weights_dirs`` are searched before the
    user cache and the bundled weights.
    """

    scale: int = 2
    model: str | None = None
    device: str = "auto"  # auto | cpu | gpu
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    require_gpu: bool = False
    tile: int | None = None
    tile_pad: int | None = None
    batch: int | None = None
    lanes: int | None = None  # concurrent upscale calls (the CPU's cores split between them); None: measured
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # output pixel format; None keeps the source's chroma, depth, RGB and alpha
    deinterlace: str = "auto"  # auto (bwdif at frame rate) | field (bwdif at field rate) | off
    drop_alpha: bool = False  # write no alpha even when the source has some (else an output without it fails)
    weights_dirs: tuple[str, ...] = ()
    reuse: str = "auto"  # one of REUSE
