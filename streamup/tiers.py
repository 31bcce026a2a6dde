"""Service tiers: one table naming, per tier, where it runs, how much it enlarges, with which model and tiles.

A tier is a bundle of defaults, not a separate code path: ``--tier pro`` only fills options the caller left
unset. Operators retune a tier without a release through the environment, e.g.
``STREAMUP_TIER_PRO_MODEL=RealESRGAN_x4plus_anime_6B`` or ``STREAMUP_TIER_BASIC_TILE=256``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from streamup.errors import UsageError


@dataclass(frozen=True)
class Tier:
    """Defaults of one tier; ``tile`` None means the engine's measured default for the device."""

    name: str
    device: str
    scale: int
    model: str
    tile: int | None


# The table. CPU tiers use the compact video model (seconds per frame on a CPU); GPU tiers the full RRDB
# model in 512 px tiles (fits fp16 activations of any frame size in a few GiB).
TIERS: dict[str, Tier] = {
    t.name: t
    for t in (
        Tier("basic", device="cpu", scale=2, model="realesr-animevideov3", tile=None),
        Tier("standard", device="cpu", scale=4, model="realesr-animevideov3", tile=None),
        Tier("premium", device="gpu", scale=2, model="RealESRGAN_x4plus", tile=512),
        Tier("pro", device="gpu", scale=4, model="RealESRGAN_x4plus", tile=512),
    )
}


def get_tier(name: str) -> Tier:
    """The tier with environment overrides (``STREAMUP_TIER_<NAME>_<FIELD>``) applied."""
    try:
        tier = TIERS[name]
    except KeyError:
        raise UsageError(f"unknown tier {name!r}: one of {', '.join(TIERS)}") from None
    changes: dict[str, object] = {}
    for f in fields(Tier):
        if f.name == "name":
            continue
        var = f"STREAMUP_TIER_{name.upper()}_{f.name.upper()}"
        raw = os.environ.get(var)
        if raw is None:
            continue
        if f.name in ("scale", "tile"):
            try:
                changes[f.name] = int(raw) if raw else None
            except ValueError:
                raise UsageError(f"{var} must be a number: {raw!r}") from None
        else:
            changes[f.name] = raw
    return replace(tier, **changes)
