"""Writes docs/benchmarks.md from the JSON in benchmarks/results/, so the page always shows what was measured.

    .venv/bin/python -m benchmarks.report [--suffix=-quick]

The verdict table is mechanical: "holds here" when this machine's 10 s time is within the claim; the FLOP
column says whether the seed's own instance could meet the claim at 100 % of its spec peak at all.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import backends, common, floor, lanes, memory, overhead, tiers, vs_reference

DOC = common.REPO / "docs" / "benchmarks.md"

TEMPLATE = common.REPO / "benchmarks" / "doc_template.md"


def load(name: str) -> dict[str, Any] | None:
    path = common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdicts(result: dict[str, Any]) -> str:
    lines = [
        "## Which seed claims hold",
        "",
        "10 s row (the others scale alike). *Here* = this machine, measured/extrapolated as above. "
        "*FLOPs* = the network FLOPs the claim needs per second against the seed instance's spec peak "
        "(t3.xlarge <= 0.40 TFLOP/s fp32; T4 65 TFLOP/s fp16): above 1x no implementation can meet the "
        "claim there.",
        "",
        "| model | 1080p reading | tier | here, 10 s (x claim) | FLOPs: x seed instance peak | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in result["cells"]:
        if c["length_s"] != 10:
            continue
        here = (f"{common.fmt_seconds(c['seconds'])} ({c['ratio']:.3g}x)" if c["seconds"] is not None
                else c.get("note", "not measured"))
        need = c.get("claim_over_seed_instance_peak")
        flops = f"{need:.2f}x" if need is not None else "— (no network)"
        if need is not None and need > 1:
            verdict = f"impossible on {c['instance']} (FLOPs)"
        elif c["seconds"] is None:
            verdict = "not measured"
            if need is not None:
                verdict += f"; possible on paper on {c['instance']} ({need:.0%} of its peak)"
        elif c["ratio"] <= 1:
            verdict = "holds here"
        else:
            verdict = f"misses here by {c['ratio']:.3g}x" + (
                f"; on paper {need:.0%} of {c['instance']} peak" if need is not None else "")
        lines.append(f"| {c['model']} | {c['reading']} ({c['input']}) | {c['tier']} | {here} | {flops} | "
                     f"{verdict} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suffix", default="", help="read results/NAME<suffix>.json, e.g. -quick")
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args()
    parts = []
    # A *-before-* tier table is an earlier machine's run, kept whole where no later run covers every model.
    for name in ("tiers-cpu", "tiers-cpu-animevideov3", "tiers-cpu-before-epyc-avx2", "tiers-gpu"):
        result = load(f"{name}{args.suffix}")
        if result:
            plot = f"../benchmarks/results/{name}{args.suffix}.png"
            parts += [tiers.markdown(result), f"![claimed vs measured]({plot})\n", verdicts(result)]
    for name in ("floor-cpu", "floor-cpu-lanes1"):
        result = load(f"{name}{args.suffix}")
        if result:
            parts.append(floor.markdown(result))
    for name in ("vs_reference-animevideov3-640x360", "vs_reference-animevideov3", "vs_reference-x4plus",
                 "vs_reference"):
        result = load(f"{name}{args.suffix}")
        if result:
            parts.append(vs_reference.markdown(result))
    sections = (("lanes-cpu", lanes), ("lanes-cpu-contended", lanes), ("overhead-cpu", overhead),
                ("overhead-cpu-x4plus", overhead), ("backends-cpu", backends), ("memory-cpu", memory))
    for name, module in sections:
        result = load(f"{name}{args.suffix}")
        if result:
            parts.append(module.markdown(result))
    result = load(f"memory-cpu-fill{args.suffix}")
    if result:
        parts.append(memory.fill_markdown(result))
    before = sorted(common.RESULTS.glob(f"*-before-*{args.suffix}.md"))
    if before:
        parts.append("## Earlier results (other machines)\n\n" + "\n".join(
            f"- [`{path.name}`](../benchmarks/results/{path.name})" for path in before) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(TEMPLATE.read_text().format(tiers="\n".join(parts)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
