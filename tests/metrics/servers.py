"""The real Prometheus and Pushgateway from Debian's ``prometheus`` and ``prometheus-pushgateway`` packages,
started on 127.0.0.1 free ports with a throw-away data folder, for the metrics tests and
``tools/render_dashboard.py``. Nothing is imitated: queries go to Prometheus' HTTP API as Grafana's would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMETHEUS_BIN = "/usr/bin/prometheus"
PUSHGATEWAY_BIN = "/usr/bin/prometheus-pushgateway"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A port nothing listens on now (the OS's pick); a server started right after takes it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QueryError(Exception):
    """Prometheus refused a query (``status: error``), e.g. a PromQL syntax error."""


@dataclass
class Prometheus:
    url: str

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a success, ``QueryError`` with Prometheus' message else."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:  # 400/422: a bad expression, with its reason in the body
            body = json.load(e)
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {labels}, "value": [t, "v"]}, ...]``."""
        return self.api("query", query=expr, time=at)["result"]

    def value(self, expr: str) -> float:
        """The single value of an instant query that must return exactly one series."""
        result = self.query(expr)
        assert len(result) == 1, f"{expr}: {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args[0]} not ready after {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def _process(argv: Sequence[str], url: str, log: Path) -> Iterator[None]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def pushgateway(workdir: Path) -> Iterator[str]:
    """A Pushgateway for the ``with``, its groups in memory only (Debian's build persists them by default to
    /var/lib/prometheus/pushgateway.data, which every instance on the machine would share); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [PUSHGATEWAY_BIN, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    with _process(argv, url, workdir / "pushgateway.log"):
        yield url


@contextlib.contextmanager
def prometheus(workdir: Path, targets: Mapping[str, str], *, rule_files: Sequence[Path] = (),
               honor_labels: Sequence[str] = (), interval: str = "1s") -> Iterator[Prometheus]:
    """A Prometheus scraping ``targets`` (scrape job name -> host:port) every ``interval`` and evaluating
    ``rule_files`` as often, its TSDB in ``workdir``; jobs in ``honor_labels`` keep pushed job labels (the
    Pushgateway convention)."""
    port = free_port()
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(p.resolve()) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "honor_labels": job in honor_labels, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    url = f"http://127.0.0.1:{port}"
    argv = [PROMETHEUS_BIN, f"--config.file={config_file}", f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    with _process(argv, url, workdir / "prometheus.log"):
        yield Prometheus(url)
