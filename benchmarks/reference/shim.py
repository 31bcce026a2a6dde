"""Lets the official Real-ESRGAN code (basicsr 1.4.2, realesrgan 0.3.0) import under a current torchvision.

basicsr 1.4.2 does ``from torchvision.transforms.functional_tensor import rgb_to_grayscale``; torchvision 0.17
removed that private module (its functions live on in ``torchvision.transforms.functional``). Aliasing the
old name is the smallest change that keeps the reference code itself untouched, so the one copy of this alias
lives here and every user of the reference path (benchmarks/vs_reference.py, tools that make reference
fixtures) imports it instead of patching basicsr.

Run a script under the alias: ``python benchmarks/reference/shim.py SCRIPT [ARGS...]``.
"""

from __future__ import annotations

import runpy
import sys

_OLD_NAME = "torchvision.transforms.functional_tensor"


def install() -> None:
    """Make ``import torchvision.transforms.functional_tensor`` resolve; call before importing basicsr."""
    if _OLD_NAME in sys.modules:
        return
    import torchvision.transforms.functional as functional

    sys.modules[_OLD_NAME] = functional


def main() -> None:
    """Run SCRIPT as ``__main__`` with the alias in place, as if started with ``python SCRIPT ARGS``."""
    if len(sys.argv) < 2:
        raise SystemExit("usage: shim.py SCRIPT [ARGS...]")
    install()
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
