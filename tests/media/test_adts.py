"""AAC in ADTS (MPEG-TS) into mp4/mkv, also to a sink that cannot seek: raw AAC, the same audio frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamup.media.adts import audio_specific_config
from tests.media import probe
from tests.media.test_mux import _ForwardOnly, _transcode


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_ts_audio_becomes_raw_aac_on_a_non_seekable_sink(clip: Callable[[str], Path], tmp_path: Path,
                                                         ext: str) -> None:
    """Matroska on a forward-only sink failed ("Invalid argument") when the config came only with the first
    audio packet; now each packet loses exactly its 7-byte ADTS header and nothing else."""
    src = clip("interlaced_h264.ts")
    sink = _ForwardOnly()
    _transcode(src, sink, ext, seekable=False)
    out = tmp_path / f"out{ext}"
    out.write_bytes(sink.data)
    assert probe.failed(probe.fidelity_checks(src, out, 2)) == {}
    before, after = probe.packets(src, "a:0"), probe.packets(out, "a:0")
    assert [int(p["size"]) - 7 for p in before] == [int(p["size"]) for p in after]
    assert probe.streams(out)[1]["extradata_size"] == 2


def test_audio_specific_config_from_stream_parameters() -> None:
    assert audio_specific_config("LC", 48000, 2) == bytes.fromhex("1190")  # what aac_adtstoasc derives
    assert audio_specific_config("LC", 44100, 1) == bytes.fromhex("1208")
    assert audio_specific_config("HE-AAC", 48000, 2) == bytes.fromhex("1310")  # implicit SBR: core 24 kHz
