"""What a weights file is: spandrel reads the architecture from the state dict; we refuse anything that is not
an RGB super-resolution network, naming the file and what it turned out to be, so a wrong ``--model`` fails in
one line before any video is touched.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import spandrel

from streamup.errors import ModelError

_PICKLE_MAGIC = b"\x80"


def load_sr_model(path: Path) -> spandrel.ImageModelDescriptor:
    """Load ``path`` on the CPU as an image super-resolution model (scale >= 2, RGB in and out)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        model = spandrel.ModelLoader().load_from_file(path)
    except spandrel.UnsupportedModelError:
        raise ModelError(f"{path}: {_what_state_dict(path)}, not an architecture spandrel knows") from None
    except Exception as exc:  # torch.load fails in many ways on junk; the file, not the stack, is the story
        raise ModelError(
            f"{path}: {_what_file(path)}, not loadable PyTorch weights ({_short(exc)})"
        ) from None
    arch = model.architecture.name
    if not isinstance(model, spandrel.ImageModelDescriptor) or model.purpose != "SR":
        raise ModelError(f"{path}: a {arch} {model.purpose} model, not an image super-resolution model")
    if model.scale < 2:
        raise ModelError(f"{path}: a {arch} model of scale {model.scale}, not an upscaler")
    if model.input_channels != 3 or model.output_channels != 3:
        raise ModelError(
            f"{path}: a {arch} model with {model.input_channels} input / {model.output_channels} output "
            "channels; streamup needs RGB in and out"
        )
    return model


def check_scale(model: spandrel.ImageModelDescriptor, path: Path, scale: int) -> int:
    """The integer factor to shrink the network's output by to reach ``scale`` (1 when native)."""
    if model.scale < scale or model.scale % scale:
        raise ModelError(
            f"{path}: a x{model.scale} {model.architecture.name} model cannot give {scale}x output "
            f"(needs a network of scale {scale} or a multiple of it)"
        )
    return model.scale // scale


def _what_file(path: Path) -> str:
    """A human name for a file torch could not read: truncated archive, text, or unknown bytes."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(512)
    if size == 0:
        return "an empty file"
    if head.startswith(b"PK"):
        return (
            f"a truncated or corrupt PyTorch archive ({size} bytes)" if not _zip_ok(path) else "a zip archive"
        )
    if head.startswith(_PICKLE_MAGIC):
        return f"a truncated or corrupt legacy PyTorch file ({size} bytes)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"an unrecognised binary file ({size} bytes)"
    return f"a text file ({size} bytes)"


def _zip_ok(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False


def _what_state_dict(path: Path) -> str:
    """Describe a readable state dict spandrel did not recognise by a few of its keys."""
    try:
        state = spandrel.ModelLoader().load_state_dict_from_file(path)
    except Exception:
        return "a PyTorch file"
    keys = list(state)
    sample = ", ".join(keys[:3])
    return f"a state dict of {len(keys)} tensors ({sample}, ...)"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:120]}" if text else type(exc).__name__
