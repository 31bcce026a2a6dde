"""The tier table: a Spring job's (device, scale) names a tier, explicit options win over the tier's."""

from __future__ import annotations

import pytest

from streamup.config import Config
from streamup.errors import UsageError
from streamup.tiers import options_for, tier_for


@pytest.mark.parametrize(("device", "scale", "tier"), [
    ("cpu", 2, "basic"), ("cpu", 4, "standard"), ("gpu", 2, "premium"), ("gpu", 4, "pro"),
])
def test_device_and_scale_name_the_old_systems_tiers(device: str, scale: int, tier: str) -> None:
    t = tier_for(device, scale)
    assert (t.name, t.device, t.scale) == (tier, device, scale)


def test_an_unknown_pair_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no tier runs on 'tpu' at 2x"):
        tier_for("tpu", 2)
    with pytest.raises(UsageError, match="at 3x"):
        tier_for("cpu", 3)


def test_explicit_options_win_and_the_tier_fills_the_rest() -> None:
    opts = options_for("pro", scale=2, model=None, tile=None, crf=20)
    assert (opts.device, opts.scale, opts.tile, opts.crf) == ("gpu", 2, 512, 20)
    assert opts.model == "RealESRGAN_x4plus"
    plain = options_for(None, model="lanczos")
    assert (plain.device, plain.scale, plain.model) == ("auto", 2, "lanczos")


def test_the_environment_retunes_a_tier() -> None:
    cfg = Config.from_environ({"STREAMUP_TIER_BASIC_MODEL": "lanczos", "STREAMUP_TIER_BASIC_TILE": "128"})
    assert tier_for("cpu", 2, cfg).model == "lanczos"
    opts = options_for("basic", cfg)
    assert (opts.model, opts.tile) == ("lanczos", 128)
    assert options_for("standard", cfg).tile is None  # another tier's override is not this one's
    with pytest.raises(UsageError, match="STREAMUP_TIER_BASIC_TILE must be a number"):
        options_for("basic", Config.from_environ({"STREAMUP_TIER_BASIC_TILE": "big"}))


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("STREAMUP_TIER_BASIC_MODLE", "lanczos", "STREAMUP_TIER_BASIC_MODLE: a tier has no 'modle'"),
    ("STREAMUP_TIER_BASIC_SCALE", "3", "scale must be one of 2, 4, got 3"),
    ("STREAMUP_TIER_BASIC_DEVICE", "tpu", "device must be one of auto, cpu, gpu, got 'tpu'"),
])
def test_an_override_that_cannot_apply_is_a_usage_error(variable: str, value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options_for("basic", Config.from_environ({variable: value}))


def test_an_unknown_tier_or_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown tier 'gold'"):
        options_for("gold")
    with pytest.raises(UsageError, match="unknown option"):
        options_for(None, colour="red")
