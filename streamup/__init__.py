"""streamup: upscale a video 2x or 4x with Real-ESRGAN-family models, frame for frame, audio untouched.

The one call every face uses::

    from streamup import upscale, UpscaleOptions
    result = upscale("in.mp4", "out.mp4", UpscaleOptions(scale=2), progress=print)

A caller that runs many videos builds the upscaler once and passes it in: ``build_upscaler(options)``, the
one door to the engine's backends. ``Config`` is the environment read once (weights folders, offline,
mirror, tier overrides...), for callers that read it themselves and pass it down.

``upscale``, ``build_upscaler`` (and the ``Progress``/``UpscaleResult`` types) load torch on first use, so
``import streamup`` stays cheap for tools that only need the version or the options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamup.config import Config
from streamup.errors import Cancelled, InputError, ModelError, OutputError, StreamupError, UsageError
from streamup.options import UpscaleOptions
from streamup.version import __version__

if TYPE_CHECKING:
    from streamup.pipeline import Progress, UpscaleResult, build_upscaler, upscale

__all__ = [
    "Cancelled",
    "Config",
    "InputError",
    "ModelError",
    "OutputError",
    "Progress",
    "StreamupError",
    "UpscaleOptions",
    "UpscaleResult",
    "UsageError",
    "__version__",
    "build_upscaler",
    "upscale",
]

_LAZY = ("Progress", "UpscaleResult", "build_upscaler", "upscale")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from streamup import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'streamup' has no attribute {name!r}")
