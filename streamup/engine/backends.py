"""The engine's backends in one table: what turns small frames into big ones, and which models each runs.

As spandrel's ``main_registry.py`` is the one list of architectures and video2x's processor factory picks a
processor from a table, ``TABLE`` is the one list of backends, and ``build(options, config)`` the one place
that picks from it (faces and library users reach it through ``streamup.pipeline.build_upscaler``).

Picking: ``options.backend`` names an entry, whose ``default_model`` fills an unset ``options.model``; or
``auto`` (the default) takes ``DEFAULT_MODEL`` for an unset model and the first entry whose ``runs(model)``
is true. So ``UpscaleOptions(model="lanczos")`` is the lanczos preview and every other model runs on torch,
with or without ``backend``; a backend asked for a model it does not run is a one-line ``UsageError``.

Adding a backend (TensorRT, OpenVINO, ...):

1. a module in ``streamup/engine/`` with ``build(options, config) -> FrameUpscaler``. The protocol is
   ``base.FrameUpscaler``: exact-size frames of the input dtype (uint8 and uint16), an ``upscale`` safe to
   call from several threads, and ``batch_frames``, ``lanes``, ``device``, ``precision``, ``oom_retries``
   and ``name`` for the pipeline and the metrics. Weights come from ``weights.resolve(model, ...,
   config=config)`` like torch's, so the resolution order and the offline rule hold for every backend;
2. an entry in ``TABLE`` below, built through a function that imports the module when a run asks for it
   (the runtimes take seconds to import, and ``streamup --help`` imports this table). Order matters only
   to ``auto``: an entry placed before ``torch`` whose ``runs`` claims a model (say, a ``.engine`` file) is
   picked for it automatically; otherwise it runs when named (``--backend tensorrt``);
3. its name in ``streamup.options.BACKENDS``, which makes it a ``--backend`` choice and a valid
   ``UpscaleOptions.backend`` (``tests/engine/test_backends.py`` checks the two lists agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from streamup.errors import UsageError

if TYPE_CHECKING:
    from streamup.config import Config
    from streamup.engine.base import FrameUpscaler
    from streamup.options import UpscaleOptions

#: The model of a run that names none: shipped inside the package (works offline on a fresh machine) and
#: 10-30x cheaper than the RRDB models on a CPU (docs/engine.md).
DEFAULT_MODEL = "realesr-animevideov3"
#: The model name of the network-free preview.
LANCZOS = "lanczos"


@dataclass(frozen=True)
class Backend:
    """One way to upscale frames: which models it runs and how to build a ``FrameUpscaler`` for a run."""

    name: str
    summary: str
    #: what ``runs`` accepts, in words (for the error when a named backend is asked for another model)
    models: str
    default_model: str
    runs: Callable[[str], bool]
    build: Callable[[UpscaleOptions, Config], FrameUpscaler]


def _torch(options: UpscaleOptions, config: Config) -> FrameUpscaler:
    from streamup.engine import factory  # torch and spandrel: seconds to import, only when a run needs them

    return factory.build(options, config)


def _lanczos(options: UpscaleOptions, config: Config) -> FrameUpscaler:
    from streamup.engine.lanczos import LanczosUpscaler

    return LanczosUpscaler(options.scale)


TABLE: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("torch", "PyTorch networks spandrel loads (the Real-ESRGAN family, any RGB SR weights file), "
                "CPU or CUDA: engine/factory.py, engine/upscaler.py, engine/tiling.py",
                models="an official model name (`streamup models`) or a weights file",
                default_model=DEFAULT_MODEL, runs=lambda model: model != LANCZOS, build=_torch),
        Backend("lanczos", "swscale lanczos, no network: an instant preview on any CPU (engine/lanczos.py)",
                models=f"only {LANCZOS!r}",
                default_model=LANCZOS, runs=lambda model: model == LANCZOS, build=_lanczos),
    )
}


def choose(options: UpscaleOptions) -> tuple[Backend, str]:
    """The backend a run uses and the model it runs (an unset model made explicit)."""
    if options.backend != "auto":
        backend = TABLE[options.backend]
        model = options.model or backend.default_model
        if not backend.runs(model):
            raise UsageError(f"backend {backend.name} does not run model {model!r}: it runs {backend.models}")
        return backend, model
    model = options.model or DEFAULT_MODEL
    for backend in TABLE.values():
        if backend.runs(model):
            return backend, model
    raise UsageError(f"no backend runs model {model!r}")


def build(options: UpscaleOptions, config: Config) -> FrameUpscaler:
    """The upscaler for a run, from the backend ``choose`` picks; ``UsageError``/``ModelError`` (one line)
    for anything unusable. ``config`` says where weights come from (``Config.from_environ``)."""
    backend, model = choose(options)
    return backend.build(replace(options, model=model), config)
