"""Service tiers: one table naming, per tier, where it runs, how much it enlarges, with which model and tiles.

A tier is a bundle of defaults, not a separate code path: ``--tier pro`` (or a job's tier) only fills options
the caller left unset, and the merging happens here alone (``options_for``), so the CLI and the worker cannot
disagree. The old system named tiers by where and how much (``device`` + ``scale_factor`` in a Spring job):
``tier_for`` maps that back. Operators retune a tier without a release through the environment, e.g.
``STREAMUP_TIER_PRO_MODEL=RealESRGAN_x4plus_anime_6B`` or ``STREAMUP_TIER_BASIC_TILE=256``; the face reads
those once (``Config.tier_overrides``) and passes its ``Config`` here (None: read the environment now).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from streamup.config import Config, tier_variable
from streamup.errors import UsageError
from streamup.options import UpscaleOptions


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


def get_tier(name: str, config: Config | None = None) -> Tier:
    """The tier with its overrides (``STREAMUP_TIER_<NAME>_<FIELD>``, from ``config``) applied."""
    try:
        tier = TIERS[name]
    except KeyError:
        raise UsageError(f"unknown tier {name!r}: one of {', '.join(TIERS)}") from None
    overrides = (config or Config.from_environ()).tier_overrides
    names = [f.name for f in fields(Tier) if f.name != "name"]
    changes: dict[str, object] = {}
    for (tier_name, field), raw in overrides.items():
        if tier_name != name:
            continue
        if field not in names:
            variable = tier_variable(name, field)
            raise UsageError(f"{variable}: a tier has no {field!r}, only {', '.join(names)}")
        if field in ("scale", "tile"):
            try:
                changes[field] = int(raw) if raw else None
            except ValueError:
                raise UsageError(f"{tier_variable(name, field)} must be a number: {raw!r}") from None
        else:
            changes[field] = raw
    return replace(tier, **changes)


def tier_for(device: str, scale: int, config: Config | None = None) -> Tier:
    """The tier a (device, scale) pair names: basic cpu 2x, standard cpu 4x, premium gpu 2x, pro gpu 4x."""
    for name, tier in TIERS.items():
        if (tier.device, tier.scale) == (device, scale):
            return get_tier(name, config)
    pairs = ", ".join(f"{t.device} {t.scale}x" for t in TIERS.values())
    raise UsageError(f"no tier runs on {device!r} at {scale}x: one of {pairs}")


def options_for(tier: str | None, config: Config | None = None, **explicit: object) -> UpscaleOptions:
    """Options for a run: explicit values (those not None) win, the tier (with ``config``'s overrides)
    fills what they left unset, and ``UpscaleOptions``' own defaults (the engine's measured ones) cover the
    rest; ``UpscaleOptions`` refuses a value outside the vocabulary (``UsageError``)."""
    given = {k: v for k, v in explicit.items() if v is not None}
    if tier is not None:
        t = get_tier(tier, config)
        for name in ("device", "scale", "model", "tile"):
            given.setdefault(name, getattr(t, name))
    try:
        return UpscaleOptions(**given)  # type: ignore[arg-type]
    except TypeError as e:
        raise UsageError(f"unknown option: {e}") from None
