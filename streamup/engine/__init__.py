"""The upscaling engine: backends (``backends.TABLE``), weights, devices, tiling and networks.

The door to it is ``streamup.pipeline.build_upscaler(options)`` (also ``streamup.build_upscaler``), which
calls ``backends.build``. This module only re-exports; they resolve on first use, because the torch backend
(``streamup.engine.factory``) imports torch (seconds): ``streamup models`` and ``doctor`` read the manifest
(``registry``, ``weights``) and the backend table without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamup.engine.backends import DEFAULT_MODEL, TABLE, Backend
    from streamup.engine.base import FrameUpscaler
    from streamup.engine.factory import default_tiling, loaded_model

__all__ = ["DEFAULT_MODEL", "TABLE", "Backend", "FrameUpscaler", "default_tiling", "loaded_model"]

_FROM = {
    "FrameUpscaler": "streamup.engine.base",
    **dict.fromkeys(("DEFAULT_MODEL", "TABLE", "Backend"), "streamup.engine.backends"),
    **dict.fromkeys(("default_tiling", "loaded_model"), "streamup.engine.factory"),
}


def __getattr__(name: str) -> Any:
    if name in _FROM:
        import importlib

        return getattr(importlib.import_module(_FROM[name]), name)
    raise AttributeError(f"module 'streamup.engine' has no attribute {name!r}")
