"""``Config.from_environ``: every variable streamup reads, parsed once, with its default when unset."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from streamup import config
from streamup.config import Config
from streamup.errors import UsageError


def test_an_empty_environment_gives_the_defaults() -> None:
    cfg = Config.from_environ({})
    assert cfg == Config() and cfg.weights_cache == Path.home() / ".cache" / "streamup" / "weights"
    assert (cfg.weights_dirs, cfg.offline, cfg.weights_mirror, cfg.tier_overrides) == ((), False, "", {})
    assert (cfg.http_host, cfg.metrics_port, cfg.pushgateway, cfg.metrics_linger_s) == (
        "127.0.0.1", None, None, 0.0)
    assert (cfg.queue_url, cfg.bucket, cfg.status_queue_url) == (None, None, None)
    assert (cfg.work_prefix, cfg.fanout_above_s, cfg.segment_s) == ("streamup-work", 60.0, Fraction(30))


def test_every_variable_reaches_its_field() -> None:
    cfg = Config.from_environ({
        config.WEIGHTS_DIR: os.pathsep.join(["/a", "", "/b"]),
        config.OFFLINE: "1",
        config.WEIGHTS_MIRROR: "http://127.0.0.1:8000/mirror/",
        config.XDG_CACHE_HOME: "/xdg",
        "STREAMUP_TIER_PRO_MODEL": "RealESRGAN_x4plus_anime_6B",
        "STREAMUP_TIER_BASIC_MAX_SECONDS": "600",
        config.HTTP_HOST: "0.0.0.0",
        config.METRICS_PORT: "9401",
        config.PUSHGATEWAY: "http://127.0.0.1:9091",
        config.METRICS_LINGER: "2.5",
        config.SQS_QUEUE_URL: "http://127.0.0.1:5000/q",
        config.S3_BUCKET_NAME: "media",
        config.STATUS_QUEUE_URL: "http://127.0.0.1:5000/status",
        config.WORK_PREFIX: "/work/area/",
        config.FANOUT_ABOVE_SECONDS: "0",
        config.SEGMENT_SECONDS: "0.1",
    })
    assert cfg.weights_dirs == (Path("/a"), Path("/b")) and cfg.offline
    assert cfg.weights_mirror == "http://127.0.0.1:8000/mirror"
    assert cfg.weights_cache == Path("/xdg/streamup/weights")
    assert cfg.tier_overrides == {("pro", "model"): "RealESRGAN_x4plus_anime_6B",
                                  ("basic", "max_seconds"): "600"}
    assert (cfg.http_host, cfg.metrics_port, cfg.pushgateway, cfg.metrics_linger_s) == (
        "0.0.0.0", 9401, "http://127.0.0.1:9091", 2.5)
    assert (cfg.queue_url, cfg.bucket, cfg.status_queue_url) == (
        "http://127.0.0.1:5000/q", "media", "http://127.0.0.1:5000/status")
    assert (cfg.work_prefix, cfg.fanout_above_s) == ("work/area", 0.0)  # 0 is a value, not "unset"
    assert cfg.segment_s == Fraction(1, 10)  # exact, not the float nearest 0.1
    assert {cfg: "one"}[cfg] == "one"  # hashable, so a face may key a cache by it


@pytest.mark.parametrize("value", ["", "0"])
def test_offline_is_off_when_empty_or_zero(value: str) -> None:
    assert not Config.from_environ({config.OFFLINE: value}).offline


@pytest.mark.parametrize("name", [config.METRICS_PORT, config.METRICS_LINGER, config.FANOUT_ABOVE_SECONDS,
                                  config.SEGMENT_SECONDS])
def test_a_number_that_does_not_parse_names_its_variable(name: str) -> None:
    with pytest.raises(UsageError, match=f"^{name} must be a number, got 'soon'$"):
        Config.from_environ({name: "soon"})
