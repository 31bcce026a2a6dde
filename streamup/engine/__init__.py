"""The upscaling engine: weights, devices, tiling and networks behind ``build_upscaler(options)``.

Only re-exports. They resolve on first use, because ``streamup.engine.factory`` imports torch (seconds):
``streamup models`` and ``doctor`` read the manifest (``registry``, ``weights``) without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamup.engine.base import FrameUpscaler
    from streamup.engine.factory import DEFAULT_MODEL, build_upscaler, default_tiling, loaded_model

__all__ = ["DEFAULT_MODEL", "FrameUpscaler", "build_upscaler", "default_tiling", "loaded_model"]

_FROM = {"FrameUpscaler": "streamup.engine.base", **dict.fromkeys(
    ("DEFAULT_MODEL", "build_upscaler", "default_tiling", "loaded_model"), "streamup.engine.factory")}


def __getattr__(name: str) -> Any:
    if name in _FROM:
        import importlib

        return getattr(importlib.import_module(_FROM[name]), name)
    raise AttributeError(f"module 'streamup.engine' has no attribute {name!r}")
