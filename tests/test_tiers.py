"""The tier table: a Spring job's (device, scale) names a tier, explicit options win over the tier's."""

from __future__ import annotations

import pytest

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


def test_the_environment_retunes_a_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMUP_TIER_BASIC_MODEL", "lanczos")
    monkeypatch.setenv("STREAMUP_TIER_BASIC_TILE", "128")
    assert tier_for("cpu", 2).model == "lanczos"
    opts = options_for("basic")
    assert (opts.model, opts.tile) == ("lanczos", 128)
    monkeypatch.setenv("STREAMUP_TIER_BASIC_TILE", "big")
    with pytest.raises(UsageError, match="STREAMUP_TIER_BASIC_TILE must be a number"):
        options_for("basic")


def test_an_unknown_tier_or_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown tier 'gold'"):
        options_for("gold")
    with pytest.raises(UsageError, match="unknown option"):
        options_for(None, colour="red")
