"""Service tiers: one table naming, per tier, where it runs, how much it enlarges, with which model and tiles.

A tier is a bundle of defaults, not a separate code path: ``--tier pro`` (or a job's tier) only fills options
the caller left unset, and the merging happens here alone (``options_for``), so the CLI and the worker cannot
disagree. The old system named tiers by where and how much (``device`` + ``scale_factor`` in a Spring job):
``tier_for`` maps that back. Operators retune a tier without a release through the environment, e.g.
``STREAMUP_TIER_PRO_MODEL=RealESRGAN_x4plus_anime_6B`` or ``STREAMUP_TIER_BASIC_TILE=256``; the face reads
those once (``Config.tier_overrides``) and passes its ``Config`` here (None: read the environment now).

A tier also bounds what one job may ask of a worker: output pixels, source seconds and input bytes
(``STREAMUP_TIER_PRO_MAX_SECONDS=3600``; an empty value lifts a limit). The worker's admission policy checks
them from the source's header before the model runs (``streamup.worker.admission``); ``streamup upscale``
applies only those an operator set (``limits(..., defaults=False)``), so a local user keeps every freedom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from streamup.config import Config, tier_variable
from streamup.errors import UsageError
from streamup.options import UpscaleOptions

#: 8K UHD (7680x4320), the largest frame any tier promises: a 1080p source at 4x lands exactly on it, and
#: 4096x2160 at 4x (16384x8640, 4.3x the area) is refused rather than left to hold a worker for days.
UHD_8K_PIXELS = 7680 * 4320


@dataclass(frozen=True)
class Tier:
    """Defaults of one tier; ``tile`` None means the engine's measured default for the device."""

    name: str
    device: str
    scale: int
    model: str
    tile: int | None
    #: Output pixels (width x height after scaling) a job may ask for; None: no limit.
    max_pixels: int | None = UHD_8K_PIXELS
    #: Seconds of source a job may bring; None: no limit.
    max_seconds: float | None = None
    #: Bytes of input a job may bring; None: no limit.
    max_bytes: int | None = None


@dataclass(frozen=True)
class Limits:
    """What one job of a tier may ask of a worker (None: no limit), with the variables that set them."""

    tier: str
    max_pixels: int | None = None
    max_seconds: float | None = None
    max_bytes: int | None = None

    def variable(self, field: str) -> str:
        """The variable that sets ``field`` (``max_pixels`` of pro: ``STREAMUP_TIER_PRO_MAX_PIXELS``)."""
        return tier_variable(self.tier, field)


LIMIT_FIELDS = ("max_pixels", "max_seconds", "max_bytes")
#: How an override's text becomes a field's value (fields not listed are text).
_PARSE: dict[str, Callable[[str], object]] = {
    "scale": int, "tile": int, "max_pixels": int, "max_seconds": float, "max_bytes": int}


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
    return replace(tier, **_overrides(name, config))


def _overrides(name: str, config: Config | None) -> dict[str, object]:
    """The fields of tier ``name`` that ``config``'s overrides set (an empty number: None)."""
    overrides = (config or Config.from_environ()).tier_overrides
    names = [f.name for f in fields(Tier) if f.name != "name"]
    changes: dict[str, object] = {}
    for (tier_name, field), raw in overrides.items():
        if tier_name != name:
            continue
        variable = tier_variable(name, field)
        if field not in names:
            raise UsageError(f"{variable}: a tier has no {field!r}, only {', '.join(names)}")
        parse = _PARSE.get(field)
        if parse is None:
            changes[field] = raw
            continue
        try:
            value = parse(raw) if raw.strip() else None
        except ValueError:
            raise UsageError(f"{variable} must be a number: {raw!r}") from None
        if isinstance(value, (int, float)) and not value >= 0:
            raise UsageError(f"{variable} must not be negative: {raw!r}")
        changes[field] = value
    return changes


def limits(name: str, config: Config | None = None, *, defaults: bool = True) -> Limits:
    """Tier ``name``'s limits: the table's with the overrides (the worker), or only what the overrides set
    (``defaults=False``: the CLI, where a local user has no limits unless an operator set them)."""
    chosen = get_tier(name, config) if defaults else \
        replace(Tier(name, "", 0, "", None), **{"max_pixels": None, **_overrides(name, config)})
    return Limits(name, **{f: getattr(chosen, f) for f in LIMIT_FIELDS})


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
