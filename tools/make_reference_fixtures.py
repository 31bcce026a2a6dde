"""Make the parity fixtures: official ``RealESRGANer`` outputs for small crops of real frames.

Needs the ``[reference]`` extra (realesrgan 0.3.0, basicsr 1.4.2, opencv) and ../shared beside the repo:

    .venv/bin/python tools/make_reference_fixtures.py

Writes ``tests/engine/fixtures/reference.npz``: for each case the input crop (RGB) and RealESRGANer's output
(converted back to RGB) at ``outscale`` 2 and 4, whole-frame (tile=0) and tiled, with the official CLI's
defaults (tile_pad 10, pre_pad 0, fp32 on the CPU). Crops are tiny so the fixtures stay small and the tests
fast; the models are the ../shared/weights files that the tests also load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OUT = REPO / "tests" / "engine" / "fixtures" / "reference.npz"

sys.path.insert(0, str(REPO))
from benchmarks.reference import shim  # noqa: E402  (the one copy of the basicsr/torchvision alias)

shim.install()

from basicsr.archs.rrdbnet_arch import RRDBNet  # noqa: E402
from realesrgan import RealESRGANer  # noqa: E402
from realesrgan.archs.srvgg_arch import SRVGGNetCompact  # noqa: E402

NETWORKS = {
    "realesr-animevideov3": lambda: SRVGGNetCompact(
        3, 3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"
    ),
    "RealESRGAN_x4plus": lambda: RRDBNet(3, 3, num_feat=64, num_block=23, num_grow_ch=32, scale=4),
    "RealESRGAN_x4plus_anime_6B": lambda: RRDBNet(3, 3, num_feat=64, num_block=6, num_grow_ch=32, scale=4),
}
TILE_PAD = 10
TILE = 24  # a 48x40 crop becomes a 2x2 grid: interior seams and clipped edge windows both occur

# name: (clip, frame index, top, left, height, width, pixel format)
CROPS = {
    "gt48x40": ("sr_gt_640x360.mkv", 12, 150, 300, 40, 48, "rgb24"),
    "odd33x27": ("odd_321x241_vp9_opus.webm", 5, 100, 140, 27, 33, "rgb24"),
    "hi10_32x32": ("h264_high10_bt709.mkv", 20, 160, 300, 32, 32, "rgb48le"),
}
# (model, crop, outscales, tiled?)
CASES = [
    ("realesr-animevideov3", "gt48x40", (2, 4), True),
    ("realesr-animevideov3", "odd33x27", (2, 4), False),
    ("realesr-animevideov3", "hi10_32x32", (2, 4), False),
    ("RealESRGAN_x4plus", "gt48x40", (2, 4), True),
    ("RealESRGAN_x4plus_anime_6B", "gt48x40", (2, 4), True),
]


def decode_crop(clip: str, index: int, top: int, left: int, height: int, width: int, fmt: str) -> np.ndarray:
    with av.open(str(SHARED / "media" / clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                rgb = frame.to_ndarray(format=fmt)
                return np.ascontiguousarray(rgb[top : top + height, left : left + width])
    raise SystemExit(f"{clip} has fewer than {index + 1} frames")


def reference(model: str, tile: int) -> RealESRGANer:
    return RealESRGANer(
        scale=4,
        model_path=str(SHARED / "weights" / f"{model}.pth"),
        model=NETWORKS[model](),
        tile=tile,
        tile_pad=TILE_PAD,
        pre_pad=0,
        half=False,
        device=torch.device("cpu"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(2)
    arrays: dict[str, np.ndarray] = {}
    for name, spec in CROPS.items():
        arrays[f"input/{name}"] = decode_crop(*spec)
    for model, crop, outscales, tiled in CASES:
        rgb = arrays[f"input/{crop}"]
        for tile in (0, TILE) if tiled else (0,):
            upsampler = reference(model, tile)
            for outscale in outscales:
                bgr_out, _ = upsampler.enhance(rgb[..., ::-1].copy(), outscale=outscale)
                key = f"{model}/{crop}/x{outscale}/tile{tile}"
                arrays[key] = np.ascontiguousarray(bgr_out[..., ::-1])
                print(key, arrays[key].shape, arrays[key].dtype)
    arrays["meta/tile_pad"] = np.array(TILE_PAD)
    arrays["meta/tile"] = np.array(TILE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
