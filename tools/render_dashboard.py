"""Draw the main panels of grafana/dashboards/streamup.json from a real Prometheus into a PNG.

No Grafana server can be installed here, so this plays Grafana's part for a picture: it reads each panel's
queries from the dashboard JSON itself, asks Prometheus' HTTP API for them over a time range (query_range,
as Grafana does) and plots the series with matplotlib.

    .venv/bin/python tools/render_dashboard.py --demo            # start Prometheus, run streamup, draw
    .venv/bin/python tools/render_dashboard.py --prometheus http://HOST:9090 --minutes 60

``--demo`` starts Debian's ``prometheus`` on a free port (scraping every second, with
deploy/prometheus/streamup.rules.yml), runs ``streamup upscale --metrics-port`` a few times one after the
other on the same port (like a worker restarting between jobs: Prometheus' rate() handles the counter
resets), then draws the window of those runs. Needs the ``[bench]`` extra (matplotlib) and ../shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.metrics.servers import Prometheus, free_port, prometheus  # noqa: E402  (the one launcher)

DASHBOARD = REPO / "grafana" / "dashboards" / "streamup.json"
RULES = REPO / "deploy" / "prometheus" / "streamup.rules.yml"
OUT = REPO / "docs" / "metrics-dashboard.png"
MEDIA = REPO.parent / "shared" / "media"
SAMPLE = REPO / "examples" / "sample.mp4"
PANELS = (  # the main ones, in the dashboard's words
    "Throughput per stage",
    "Real-time factor per tier",
    "Where the time goes: busy seconds per second, per stage",
    "Queue fill between stages",
    "Jobs per hour by tier and outcome",
    "Seconds per video second per tier, against the promise",
    "Job duration p50 / p95 per tier, against the seed's promise",
    "Resident memory (RSS)",
)
# The demo's jobs: (tier or None, model, input). Real models on a real clip, a preview, and a broken input
# (a failed job).
DEMO_RUNS = (
    ("basic", None, SAMPLE),
    ("standard", None, SAMPLE),
    (None, "lanczos", MEDIA / "faststart.mp4"),
    ("basic", None, MEDIA / "bad_text.mp4"),
    ("basic", "lanczos", MEDIA / "main_h264_aac_640x360.mp4"),
)


def run_demo(prom: Prometheus, port: int, work: Path) -> tuple[float, float]:
    """Run DEMO_RUNS one after the other with ``/metrics`` on ``port``; the time window they took."""
    while not prom.query('up{job="streamup"}'):  # scraping has begun
        time.sleep(0.2)
    start = time.time()
    for n, (tier, model, source) in enumerate(DEMO_RUNS):
        argv = [sys.executable, "-m", "streamup", "upscale", str(source), str(work / f"out{n}.mp4"),
                "--no-progress", "--metrics-port", str(port), "--metrics-linger", "3"]
        argv += ["--tier", tier] if tier else []
        argv += ["--model", model] if model else []
        t0 = time.time()
        rc = subprocess.run(argv, env={**os.environ, "OMP_NUM_THREADS": "2"}).returncode
        print(f"run {n}: tier={tier} model={model} {source.name}: exit {rc}, {time.time() - t0:.1f} s")
        time.sleep(2)  # a gap between jobs, as between a worker's messages
    return start - 5, time.time()


def draw(prom: Prometheus, start: float, end: float, out: Path, rate_window: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {p["title"]: p for p in json.loads(DASHBOARD.read_text())["panels"]}
    step = max(1.0, (end - start) / 400)
    fig, axes = plt.subplots(4, 2, figsize=(15, 15), constrained_layout=True)
    for ax, title in zip(axes.flat, PANELS, strict=True):
        panel = panels[title]
        unit = panel["fieldConfig"]["defaults"].get("unit", "")
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", rate_window)
            for series in prom.query_range(expr, start, end, step):
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                label = target.get("legendFormat", "")
                for key, val in series["metric"].items():
                    label = label.replace("{{" + key + "}}", val)
                label = " ".join(label.replace("{{", "").replace("}}", "").split()) or expr[:40]
                dashed = label.startswith("promise")
                ax.plot(xs, ys, "--" if dashed else "-", drawstyle="default", label=label, linewidth=1.4)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("seconds since start of the demo")
        ax.set_ylabel("" if unit == "short" else unit)
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle("streamup dashboard (grafana/dashboards/streamup.json) drawn from a real Prometheus: "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end))}, AMD EPYC 2 cores, no GPU",
                 fontsize=11)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo", action="store_true", help="start Prometheus and run streamup to have data")
    p.add_argument("--prometheus", metavar="URL", help="an existing Prometheus")
    p.add_argument("--minutes", type=float, default=60, help="with --prometheus: the last N minutes")
    p.add_argument("--rate-window", default="15s", help="what $__rate_interval stands for")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    if args.demo:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp, \
                prometheus(Path(tmp), {"streamup": f"127.0.0.1:{port}"}, rule_files=[RULES]) as prom:
            start, end = run_demo(prom, port, Path(tmp))
            draw(prom, start, end, args.out, args.rate_window)
    elif args.prometheus:
        end = time.time()
        draw(Prometheus(args.prometheus), end - 60 * args.minutes, end, args.out, args.rate_window)
    else:
        p.error("--demo or --prometheus URL")


if __name__ == "__main__":
    main()
