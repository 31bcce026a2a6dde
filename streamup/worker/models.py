"""The worker's model cache: one upscaler per distinct options, shared by every job thread.

The engine loads each network once per process, so the tiers of one model share its weights too. Building
is serialised by one lock: two jobs asking for the same model at once must not load it twice (a 4x model
is hundreds of MiB and seconds of start-up).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from streamup.tiers import TIERS, options_for

if TYPE_CHECKING:
    from streamup.config import Config
    from streamup.engine.base import FrameUpscaler
    from streamup.options import UpscaleOptions

log = logging.getLogger("streamup")


class Models:
    """Upscalers by options, built on first use (``get``) or before any job (``preload``)."""

    def __init__(self, config: Config, weights_dirs: tuple[str, ...] = ()) -> None:
        self.config, self.weights_dirs = config, weights_dirs
        self._upscalers: dict[UpscaleOptions, FrameUpscaler] = {}
        self._lock = threading.Lock()

    def preload(self, tiers: tuple[str, ...] | None) -> None:
        """Load the models of ``tiers`` (None: the tiers of this machine's device)."""
        for tier in _device_tiers() if tiers is None else tiers:
            self.get(options_for(tier, self.config, weights_dirs=self.weights_dirs))

    def get(self, options: UpscaleOptions) -> FrameUpscaler:
        """The upscaler for ``options``, built now if this is its first use; raises ``ModelError``."""
        with self._lock:
            upscaler = self._upscalers.get(options)
            if upscaler is None:
                from streamup.pipeline import build_upscaler  # imports torch: on first use, not for --help

                t0 = time.perf_counter()
                upscaler = self._upscalers[options] = build_upscaler(options, self.config)
                fields = {"event": "model", "model": upscaler.name, "device": upscaler.device}
                log.info("loaded %s x%d on %s (%s) in %.1f s", upscaler.name, upscaler.scale, upscaler.device,
                         upscaler.precision, time.perf_counter() - t0, extra={"fields": fields})
        return upscaler


def _device_tiers() -> tuple[str, ...]:
    from streamup.pipeline import default_device  # torch: loaded once, here, not for `--help`

    device = "gpu" if default_device() == "cuda" else "cpu"
    return tuple(name for name, tier in TIERS.items() if tier.device == device)
