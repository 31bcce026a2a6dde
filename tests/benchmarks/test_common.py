"""The result-writing helpers every benchmark's ``markdown``/``main`` share (benchmarks/common.py)."""

from __future__ import annotations

import json
from pathlib import Path

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
