"""The torch backend's builder (``backends.TABLE["torch"]``): options to a ``TorchUpscaler``.

It decides which weights (``weights``), what they are (``loader``), where and in what precision they run
(``device``), how frames are cut and batched (``tiling``, ``upscaler``). Networks are loaded once per process
and shared, keyed by file, device and precision, so a worker that runs many jobs reads and places each model
once. The options arrive checked (``UpscaleOptions``) and with their model named (``backends.choose``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import spandrel
import torch

from streamup.engine import device as device_mod
from streamup.engine import loader, registry, tiling, weights
from streamup.engine.upscaler import TorchUpscaler
from streamup.options import UpscaleOptions

if TYPE_CHECKING:
    from streamup.config import Config

_lock = threading.Lock()
_models: dict[tuple[str, str, str], spandrel.ImageModelDescriptor] = {}


def default_tiling(
    model: spandrel.ImageModelDescriptor, placement: device_mod.Placement
) -> tuple[int, int, int, int]:
    """(tile, tile_pad, batch, max batch pixels) used when options leave them unset; reasons in ``tiling``."""
    arch = model.architecture.id
    if placement.device.type == "cuda":
        budget = torch.cuda.get_device_properties(placement.device).total_memory * tiling.GPU_SHARE
        half = placement.precision != "fp32"
        tile = tiling.default_tile(arch, budget / tiling.GPU_BATCH, half)
        return tile, tiling.DEFAULT_PAD, tiling.GPU_BATCH, tiling.budget_pixels(arch, budget, half)
    budget = float(tiling.CPU_BUDGET)
    cap = tiling.CPU_TILE_CAP_BF16 if placement.precision == "bf16" else tiling.CPU_TILE_CAP
    tile = min(cap, tiling.default_tile(arch, budget, half=False))
    return tile, tiling.DEFAULT_PAD, tiling.CPU_BATCH, tiling.budget_pixels(arch, budget, half=False)


def loaded_model(path: Path, placement: device_mod.Placement) -> spandrel.ImageModelDescriptor:
    """The network in ``path`` placed on the device in its weights dtype; loaded at most once per process."""
    key = (str(path.resolve()), str(placement.device), placement.precision)
    with _lock:
        model = _models.get(key)
        if model is None:
            model = loader.load_sr_model(path)
            model.to(placement.device).to(placement.weights_dtype).eval()
            model.model.to(memory_format=torch.channels_last)  # measured: faster and -30% peak memory
            _models[key] = model
    return model


def build(options: UpscaleOptions, config: Config) -> TorchUpscaler:
    """The torch upscaler for a run of ``options.model``; ModelError (one line) for unusable weights."""
    assert options.model is not None  # backends.choose names it
    name = options.model
    info = registry.model_info(name)
    if (
        options.scale == 2
        and info
        and info.x2_sibling
        and weights.find_local(info.x2_sibling, options.weights_dirs, config=config)
    ):
        name = info.x2_sibling  # same recipe trained for x2: native output and a quarter of the compute
    placement = device_mod.choose(options.device, options.precision, options.require_gpu)
    path = weights.resolve(name, options.weights_dirs, config=config)
    model = loaded_model(path, placement)
    loader.check_scale(model, path, options.scale)
    tile, pad, batch, max_pixels = default_tiling(model, placement)
    lanes = options.lanes or (1 if placement.device.type == "cuda" else tiling.CPU_LANES)
    if placement.device.type == "cpu":
        lanes = device_mod.use_cpu_lanes(lanes)
    return TorchUpscaler(
        model,
        placement,
        scale=options.scale,
        tile=tile if options.tile is None else options.tile,
        tile_pad=pad if options.tile_pad is None else options.tile_pad,
        batch=batch if options.batch is None else options.batch,
        max_batch_pixels=max_pixels if options.batch is None else None,
        name=name if not weights.is_path_like(name) else Path(name).stem,
        lanes=lanes,
    )
