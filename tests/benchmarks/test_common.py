"""What every benchmark shares (benchmarks/common.py): the result-writing helpers, and the clips it makes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import numpy as np
import pytest

from benchmarks import common

RESULT = {"command": ".venv/bin/python -m benchmarks.floor --quick", "finished_utc": "2025-01-02T03:04:05Z",
          "value": 1}


def test_markdown_ends_with_the_command_that_made_it() -> None:
    text = common.markdown_with_command(["## Title", "", "| a |", "| --- |"], RESULT)
    assert text == ("## Title\n\n| a |\n| --- |\n\nCommand: `.venv/bin/python -m benchmarks.floor --quick` "
                    "(finished 2025-01-02T03:04:05Z)\n")


@pytest.mark.parametrize("show", [None, "{json}"])
def test_save_result_writes_json_and_markdown_and_shows_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], show: str | None) -> None:
    stem = tmp_path / "results" / "floor-cpu"
    common.save_result(stem, RESULT, "the table\n", show=show)
    assert json.loads(stem.with_suffix(".json").read_text()) == RESULT
    assert stem.with_suffix(".md").read_text() == "the table\n"
    assert capsys.readouterr().out == ("the table\n" if show is None else show) + "\n"


def test_a_held_clip_shows_each_picture_twice(tmp_path: Path) -> None:
    """``make_clip(held=2)``: animation on twos from real footage (the tier table's ``--held 2``): each
    picture twice, its repeat nearly the same (crf 20), the next picture clearly different."""
    clip = common.make_clip(common.MEDIA / "main_h264_aac_640x360.mp4", tmp_path / "twos.mp4", size=(160, 90),
                            frames=12, held=2)
    with av.open(str(clip)) as container:
        frames = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]
    assert len(frames) == 12
    change = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(frames)]
    repeats, new_pictures = change[0::2], change[1::2]
    assert max(repeats) < 1.5 < min(new_pictures), change
