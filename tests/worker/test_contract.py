"""One contract, two readings: ``streamup.worker.jobs.parse`` and ``schemas/job.schema.json`` give the same
verdict on every message of one corpus (``tests/worker/contract/messages.json``), and that verdict is the
one the corpus expects. A refusal names what it refused (the corpus gives the words) on one line.

The schema side reads each body with the parser's strict JSON reading (``jobs.decode``): what JSON text
means (``NaN`` is none) is not the schema's to say; what a JSON value may be is.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from streamup.worker import jobs
from tests.conftest import REPO

BUCKET = "media-bucket"
SCHEMA = jsonschema.Draft202012Validator(json.loads((REPO / "schemas/job.schema.json").read_text()))
CORPUS: list[dict[str, Any]] = json.loads((REPO / "tests/worker/contract/messages.json").read_text())


def _body(case: dict[str, Any]) -> str:
    return case["body"] if "body" in case else json.dumps(case["message"])


def _schema_accepts(body: str) -> bool:
    try:
        return SCHEMA.is_valid(jobs.decode(body))
    except jobs.InvalidJob:
        return False


def _parser_accepts(body: str) -> tuple[bool, str]:
    try:
        jobs.parse(body, BUCKET)
    except jobs.InvalidJob as e:
        return False, str(e)
    return True, ""


def test_the_corpus_is_large_and_mixed() -> None:
    verdicts = [c["verdict"] for c in CORPUS]
    assert len(CORPUS) >= 30 and verdicts.count("valid") >= 10 and verdicts.count("invalid") >= 20
    assert len({c["name"] for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_parser_and_schema_agree_with_the_expected_verdict(case: dict[str, Any]) -> None:
    body = _body(case)
    valid = case["verdict"] == "valid"
    parsed, refusal = _parser_accepts(body)
    assert (_schema_accepts(body), parsed) == (valid, valid), refusal
    if not valid:
        assert case["refusal"] in refusal and "\n" not in refusal, refusal
