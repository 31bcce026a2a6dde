"""What a caller can ask of one upscale run; the CLI, the worker and library users all build one of these.

The vocabulary below is stated once: the CLI's choices, the job parser's accepted values and the engine read
these tuples, and ``UpscaleOptions`` checks a run's values against them when it is built. That is the one
place a bad scale, device, precision, backend, deinterlace or reuse mode, tile, batch or lane count is
refused, so every face (a flag, a job message, a tier override, a library call) fails the same way: one
``UsageError`` line, before any work.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamup.errors import UsageError

#: Enlargements streamup produces (the official models are x2 and x4; x4 networks serve x2 by a lanczos
#: downscale when no x2 sibling is installed).
SCALES = (2, 4)
#: Where a run may be asked to run: ``auto`` picks CUDA when present, else the CPU.
DEVICES = ("auto", "cpu", "gpu")
#: Devices a job (and a tier) names: the old system's vocabulary, without ``auto``.
JOB_DEVICES = ("cpu", "gpu")
#: Arithmetic of the network: ``auto`` is fp16 on CUDA, bf16 on a CPU that has it, else fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: What turns small frames into big ones (``streamup.engine.backends.TABLE``, one entry per name after
#: ``auto``): ``auto`` takes the first backend in the table that runs the model, so ``model="lanczos"``
#: alone picks the lanczos preview and every other model torch.
BACKENDS = ("auto", "torch", "lanczos")
#: Containers streamup writes, by an output's extension (``media.mux.CONTENT_TYPES`` has one entry each): a
#: job's derived output and a folder run's outputs keep their input's extension when it is one of these.
OUTPUT_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm")
#: Interlaced sources (``streamup.media.interlace``): ``auto`` deinterlaces frames flagged interlaced, one
#: frame out per frame in; ``field`` one frame per field (double rate); ``off`` keeps frames as they are.
DEINTERLACE = ("auto", "field", "off")
#: Reuse of unchanged pictures (``streamup.pipeline.reuse``): ``auto`` keeps the output of a tile whose input
#: did not change, where the engine can compute tiles alone; ``off`` computes every tile of every frame.
REUSE = ("auto", "off")


@dataclass(frozen=True)
class UpscaleOptions:
    """Options of one run. ``None`` means "the engine's or the container's measured default".

    ``model`` is an official model name (``realesr-animevideov3``, ``RealESRGAN_x4plus``, ...), a path to a
    ``.pth`` file, or ``lanczos`` (no network: an instant preview); None is the backend's default model.
    ``weights_dirs`` are searched before ``STREAMUP_WEIGHTS_DIR``, the user cache and the bundled weights.
    Building one with a value outside the vocabulary above raises ``UsageError``.
    """

    scale: int = 2
    model: str | None = None
    backend: str = "auto"  # auto | torch | lanczos (BACKENDS)
    device: str = "auto"  # auto | cpu | gpu
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    require_gpu: bool = False
    tile: int | None = None  # 0: whole frames
    tile_pad: int | None = None
    batch: int | None = None
    lanes: int | None = None  # concurrent upscale calls (the CPU's cores split between them); None: measured
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None  # output pixel format; None keeps the source's chroma, depth, RGB and alpha
    deinterlace: str = "auto"  # one of DEINTERLACE
    drop_alpha: bool = False  # write no alpha even when the source has some (else an output without it fails)
    weights_dirs: tuple[str, ...] = ()
    reuse: str = "auto"  # one of REUSE

    def __post_init__(self) -> None:
        _one_of("scale", self.scale, SCALES)
        _one_of("device", self.device, DEVICES)
        _one_of("precision", self.precision, PRECISIONS)
        _one_of("backend", self.backend, BACKENDS)
        _one_of("deinterlace", self.deinterlace, DEINTERLACE)
        _one_of("reuse", self.reuse, REUSE)
        if self.device == "cpu" and self.require_gpu:
            raise UsageError("require_gpu (--require-gpu) contradicts device cpu")
        for name, least in (("tile", 0), ("tile_pad", 0), ("batch", 1), ("lanes", 1)):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < least):
                raise UsageError(f"{name} must be a whole number of at least {least}, got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _one_of(name: str, value: object, allowed: tuple[object, ...]) -> None:
    # bool is an int (True == 1): a flag's value must not pass for a number of the vocabulary
    if isinstance(value, bool) or value not in allowed:
        raise UsageError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
