"""The official ``RealESRGANer`` built as ``inference_realesrgan_video.py`` builds it, for in-process use.

The video script's per-frame work is ``RealESRGANer.enhance`` (BGR uint8 in, BGR uint8 out, ``outscale``
through ``cv2.resize`` lanczos). Comparing streamup with it on decoded RGB frames measures parity of the
model output itself, free of either side's video encoder (``benchmarks.vs_reference``), and its speed on the
same device (``benchmarks.gpu_check``). Needs the ``[reference]`` extra.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.reference import shim

TILE_PAD = 10  # the script's --tile_pad default; --tile defaults to 0 (whole frames), --pre_pad to 0


def upsampler(key: str, device: str = "cpu", half: bool = False, tile: int = 0) -> Any:
    """``RealESRGANer`` for ``common.MODELS[key]``, with the network the video script builds for it."""
    shim.install()
    import torch
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from realesrgan import RealESRGANer
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact

    networks = {
        "x4plus": lambda: RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32, scale=4),
        "animevideov3": lambda: SRVGGNetCompact(3, 3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"),
    }
    return RealESRGANer(
        scale=4, model_path=str(common.MODELS[key].weights), model=networks[key](), tile=tile,
        tile_pad=TILE_PAD, pre_pad=0, half=half, device=torch.device(device),
    )


def enhance(official: Any, rgb: np.ndarray, outscale: int) -> np.ndarray:
    """One RGB frame through ``RealESRGANer.enhance`` (which works in BGR, as OpenCV reads it)."""
    bgr, _ = official.enhance(np.ascontiguousarray(rgb[..., ::-1]), outscale=outscale)
    return np.ascontiguousarray(bgr[..., ::-1])
