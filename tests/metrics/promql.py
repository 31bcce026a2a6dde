"""Every PromQL expression streamup ships, read from the files themselves, and what a test needs to run them.

Sources: each panel target of ``grafana/dashboards/streamup.json`` and each rule of
``deploy/prometheus/streamup.rules.yml``. An alert expression returns nothing while its alert is quiet, so
``as_bool`` turns each comparison into a ``bool`` comparison (``a > 0.1`` -> ``a > bool 0.1``): the result
then has a series wherever the compared series exist, which is what "returns data" must prove.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

DASHBOARD = REPO / "grafana" / "dashboards" / "streamup.json"
RULES = REPO / "deploy" / "prometheus" / "streamup.rules.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "streamup.rules.test.yml"
# Grafana's interval variable; the Prometheus under test scrapes every 200 ms.
GRAFANA_VARIABLES = {"$__rate_interval": "1m"}


@dataclass(frozen=True)
class Expression:
    where: str  # "dashboard: <panel title>" or "rules: <record or alert name>"
    expr: str
    alert: bool = False


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels", [])))  # collapsed rows hold their panels
    return out


def dashboard_expressions(path: Path = DASHBOARD) -> list[Expression]:
    found = []
    for panel in _panels(json.loads(path.read_text())["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            found.append(Expression(f"dashboard: {panel['title']}", expr))
    return found


def rule_expressions(path: Path = RULES) -> list[Expression]:
    found = []
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule["alert"]
            found.append(Expression(f"rules: {name}", rule["expr"], alert="alert" in rule))
    return found


_COMPARISON = re.compile(r"==|!=|>=|<=|>|<")
_BOOL = re.compile(r"\s*bool\b")


def as_bool(expr: str) -> str:
    """``expr`` with every comparison outside label matchers and strings made a ``bool`` one."""
    out, depth, quote = [], 0, ""
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif c in "{}":
            depth += 1 if c == "{" else -1
            out.append(c)
        elif depth == 0 and (m := _COMPARISON.match(expr, i)):
            out.append(m.group() if _BOOL.match(expr, m.end()) else f"{m.group()} bool ")
            i = m.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)
