"""Chaos soak: a fleet of real ``streamup worker`` processes under faults, judged from outside.

Everything the soak knows of the workers is their external contract: the command line and environment it
starts them with, the job messages it sends (``schemas/job.schema.json``), the status events they send
(``schemas/status-event.schema.json``), the objects in the bucket, ``/metrics``, and each worker's JSON log
(``--log-format json --debug``, one file per worker) used only to say which worker ran which job.

The rig, all on 127.0.0.1: a moto server (S3 + SQS) with a job queue (short visibility timeout, a redrive
policy to a dead-letter queue after ``--max-receives``) and a status queue; ``benchmarks/faults.py``'s proxy
between the workers and moto (5xx, ``SlowDown``, connection resets, slow answers; the soak itself talks to
moto directly); ``--workers`` worker processes. A mixed workload (``KINDS``: tiers, containers, real-model
jobs, a job lasting at least 5 visibility timeouts, fan-out, one job sent twice at once, invalid jobs, a
missing input) is sent over the first 90 % of ``--minutes``; every ``--fault-every`` seconds one scheduled
fault strikes (SIGKILL of a busy worker, SIGTERM with a short drain, a storm of storage/queue errors) and a
killed or stopped worker is replaced at once.

The oracle (``check``) then holds the fleet to what it promises; each invariant is held or broken, with
details. Exit 0 only when every invariant held.

    .venv/bin/python -m benchmarks.soak --minutes 30 --jobs 120 --workers 3 --fault-every 20
    .venv/bin/python -m benchmarks.soak --minutes 2 --jobs 15 --workers 2 --fault-every 15 --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import (
    FIDELITY,
    MEDIA,
    REPO,
    RESULTS,
    WEIGHTS,
    cpu_model,
    fmt_seconds,
    write_json,
)
from benchmarks.faults import FaultProxy
from benchmarks.worker_throughput import frames_of
from tests.storage.s3_endpoint import s3_env, serve
from tests.worker.queues import clients

STREAMUP = Path(sys.executable).with_name("streamup")  # the console script installed beside this Python
EVENT_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((REPO / "schemas/status-event.schema.json").read_text()))
STAGES = ("decode", "upscale", "encode")
#: Final records a worker logs for a run (``event`` field), by which a run stops being "open" in its log.
FINAL_JOB_STATUSES = ("succeeded", "failed", "cancelled", "duplicate")


@dataclass(frozen=True)
class Kind:
    """One sort of job in the workload. ``source``: the input clip (None: the job names a missing key);
    ``body``: the message's fields beyond jobId/inputKey/outputKey, or a raw string (bad JSON);
    ``valid``: must end SUCCEEDED (else FAILED once, permanently)."""

    source: str | None
    params: dict[str, Any] | None = None
    ext: str = ".mp4"
    scale: int = 2
    valid: bool = True
    raw: str | None = None
    output: str | None = None  # an outputKey outside the contract (invalid kinds)
    copies: int = 1


LANCZOS_BASIC = {"tier": "basic", "model": "lanczos"}
#: The long job's clip, made from the shared media: Big Buck Bunny's 5 s at 320x180 (120 frames, every one
#: different). With reuse of unchanged pictures on by default, the earlier clip (sr_input_x2_320x180.mkv,
#: 48 frames) finished in 4.7-8.2 s, under 5 visibility timeouts, and proved nothing about heartbeats; and
#: 48 frames of this one took 6.7 s on a quiet machine. 120 changing frames keep the network busy longer.
MOTION = "motion_320x180.mkv"
#: ffmpeg arguments that make each clip the soak makes itself.
MADE = {MOTION: ["-i", str(MEDIA / "main_h264_aac_640x360.mp4"), "-vf", "scale=320:180",
                 "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-c:a", "copy"]}
#: The workload. Clips from ../shared/media (README there), examples/sample.mp4 and ``MADE``: short, so
#: that a 2-core machine runs many jobs; real-model (realesr-animevideov3, the CPU tiers' model) jobs on the
#: tiniest clips; ``long`` is 120 frames through the real model at x4 (at least 5 visibility timeouts of
#: the soak's queue, so only heartbeats keep it on one worker).
KINDS: dict[str, Kind] = {  # in priority order: a workload of N < len(KINDS) jobs has the first N
    "long": Kind(MOTION, {"tier": "standard"}, ".mkv", scale=4),
    "twice": Kind("sample.mp4", LANCZOS_BASIC, copies=2),
    "fanout": Kind("faststart.mp4", {**LANCZOS_BASIC, "segmentSeconds": 1}),
    "real-mp4": Kind("sample.mp4", {"tier": "basic"}),
    "scale-mov": Kind("faststart.mp4", {"device": "cpu", "scale_factor": "2", "model": "lanczos"}, ".mov"),
    "basic-webm": Kind("odd_321x241_vp9_opus.webm", LANCZOS_BASIC, ".webm"),
    "bad-json": Kind("sample.mp4", valid=False, raw='{"jobId": "broken", "parameters": '),
    "unknown-tier": Kind("sample.mp4", {"tier": "ultra"}, valid=False),
    "bad-scale": Kind("sample.mp4", {"device": "cpu", "scale_factor": 3}, valid=False),
    "bad-output": Kind("sample.mp4", LANCZOS_BASIC, valid=False, output="out/escape.avi"),
    "missing-input": Kind(None, LANCZOS_BASIC, valid=False),
    "standard-mp4": Kind("sample.mp4", {"tier": "standard", "model": "lanczos"}, scale=4),
    "real-mkv": Kind("sr_input_x4_160x90.mkv", {"tier": "basic"}, ".mkv"),
    "basic-mkv": Kind("h264_ac3_640x360.mkv", LANCZOS_BASIC, ".mkv"),
    "hevc-mov": Kind("hevc_pcm_640x360.mov", LANCZOS_BASIC, ".mov"),
    "basic-mp4": Kind("sample.mp4", LANCZOS_BASIC),
}
#: After the first round of every kind, the rest of the workload is drawn with these weights: mostly
#: light jobs, so that 100 jobs fit 30 minutes of a 2-core machine with faults.
WEIGHTS_AFTER_FIRST = {"basic-mp4": 6, "standard-mp4": 3, "real-mp4": 3, "real-mkv": 2, "scale-mov": 2,
                       "basic-mkv": 1, "basic-webm": 1, "hevc-mov": 1, "fanout": 2, "twice": 1, "long": 1,
                       "missing-input": 1, "bad-json": 1, "unknown-tier": 1, "bad-scale": 1, "bad-output": 1}


def clip(name: str) -> Path:
    """Where a workload clip is: examples/sample.mp4, a clip of ``MADE`` (made once, into the temp folder),
    or a shared one."""
    if name == "sample.mp4":
        return REPO / "examples" / name
    if name not in MADE:
        return MEDIA / name
    path = Path(tempfile.gettempdir()) / "streamup-soak-clips" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{uuid.uuid4().hex}{path.suffix}")
        subprocess.run(["ffmpeg", "-v", "error", "-y", *MADE[name], str(partial)], check=True)
        partial.replace(path)
    return path


FAULTS = ("sigkill", "sigterm", "storm")
#: Share of ``--minutes`` over which jobs are sent: the fleet is kept busy for the whole run, and the last
#: jobs still meet faults.
SEND_SHARE = 0.9
#: SIGKILLs one job may suffer. Each costs the job a receive (the worker cannot tell SQS it died), so
#: a job killed ``--max-receives`` times is dead-lettered with no FAILED event by any fleet: that is
#: the chaos being unfair, not the worker failing. One per job; drains (SIGTERM) have no such limit:
#: a release must never cost a job its place (issue 16, item 4).
KILLS_PER_JOB = 1
#: A FAILED sent again is explained by a SIGKILL of its first sender at most this long after it sent it
#: (the delete follows the send at once; seconds allow for a loaded machine and the soak's 0.5 s loop).
KILL_WINDOW_S = 5
#: Seconds the job queue must stay empty, with jobs unfinished, before the soak stops waiting for them:
#: several of the workers' 1 s polls, and the soak's own 0.5 s loop.
STALL_S = 10


@dataclass
class Job:
    """One job of the workload as sent (``copies`` messages with one body)."""

    name: str
    kind: str
    job_id: str | None
    body: str
    valid: bool
    source: Path | None
    scale: int
    copies: int
    send_at: float  # seconds after the start
    sent_at: float | None = None


def workload(count: int, seed: int, window_s: float, run: str) -> list[Job]:
    """``count`` jobs: every kind once (in ``KINDS``' order) while count allows, then weighted draws; the
    long job is sent first, the rest in a seeded order, spread evenly over ``window_s``."""
    rng = random.Random(seed)
    first = list(KINDS)[:count]
    rest = first[1:] + rng.choices(list(WEIGHTS_AFTER_FIRST), list(WEIGHTS_AFTER_FIRST.values()),
                                        k=max(0, count - len(KINDS)))
    rng.shuffle(rest)
    jobs = []
    for i, kind_name in enumerate(first[:1] + rest):
        kind = KINDS[kind_name]
        name = f"{run}-{i:03d}-{kind_name}"
        source = None if kind.source is None else clip(kind.source)
        message: dict[str, Any] = {"jobId": name, "parameters": kind.params or {},
                                   "inputKey": f"in/{kind.source}" if source else f"in/missing-{name}.mp4",
                                   "outputKey": kind.output or f"out/{name}{kind.ext}"}
        body = kind.raw if kind.raw is not None else json.dumps(message)
        job_id = None if kind.raw is not None else name
        jobs.append(Job(name, kind_name, job_id, body, kind.valid, source, kind.scale, kind.copies,
                        window_s * i / max(1, count)))
    return jobs


# -- workers -------------------------------------------------------------------------------------------


@dataclass
class Scrape:
    """``/metrics`` of one worker at one moment, with the worker's log records written before it."""

    at: float
    why: str
    samples: dict[str, float]
    records: list[dict[str, Any]]


@dataclass
class WorkerProc:
    """One ``streamup worker`` process; its stderr (JSON log) goes to ``log_path``."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.time)
    stopped: float | None = None
    how: str | None = None  # sigkill / sigterm / end (None: still running, or died on its own)
    exit_code: int | None = None
    scrapes: list[Scrape] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "raw", "message": line})
        return out

    def port(self) -> int | None:
        return next((int(r["port"]) for r in self.records() if r.get("event") == "http"), None)

    def ready(self) -> bool:
        return any(r.get("event") == "ready" for r in self.records())

    def alive(self) -> bool:
        return self.proc.poll() is None

    def metrics(self) -> dict[str, float] | None:
        port = self.port()
        if port is None or not self.alive():
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
        except OSError:
            return None
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}"] = s.value
        return samples

    def scrape(self, why: str) -> Scrape | None:
        """A scrape whose log snapshot is consistent with it: the log is read before and after, and the
        scrape counts only when no run ended in between (a run's metrics are final before its log record)."""
        for _ in range(5):
            before = self.records()
            samples = self.metrics()
            if samples is None:
                return None
            time.sleep(0.5)  # a run counted in the scrape has logged its end by now
            after = self.records()
            if _finals(before) == _finals(after):
                scrape = Scrape(time.time(), why, samples, after)
                self.scrapes.append(scrape)
                return scrape
        return None

    def in_progress(self) -> int:
        return int((self.metrics() or {}).get("streamup_jobs_in_progress{}", 0))


def _finals(records: list[dict[str, Any]]) -> int:
    return sum(r.get("event") in ("job", "segment", "stitch") and r.get("status") != "started"
               for r in records)


class Fleet:
    """Start, stop, kill and replace workers; every worker ever started is kept for the oracle."""

    def __init__(self, env: dict[str, str], args: list[str], logs: Path) -> None:
        self.env, self.args, self.logs = env, args, logs
        self.workers: list[WorkerProc] = []

    def start(self) -> WorkerProc:
        name = f"w{len(self.workers) + 1:02d}"
        log_path = self.logs / f"{name}.jsonl"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([str(STREAMUP), "worker", *self.args], env=self.env, cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=log)
        worker = WorkerProc(name, proc, log_path)
        self.workers.append(worker)
        return worker

    def live(self) -> list[WorkerProc]:
        return [w for w in self.workers if w.alive() and w.how is None]

    def kill(self, worker: WorkerProc) -> None:
        worker.how, worker.stopped = "sigkill", time.time()
        worker.proc.send_signal(signal.SIGKILL)
        worker.exit_code = worker.proc.wait()

    def terminate(self, worker: WorkerProc, how: str) -> None:
        """Graceful stop: scrape ``/metrics`` just before SIGTERM (the exit is collected by ``reap``)."""
        worker.scrape(f"before {how}")
        worker.how, worker.stopped = how, time.time()
        worker.proc.send_signal(signal.SIGTERM)

    def reap(self, timeout: float = 0) -> None:
        deadline = time.monotonic() + timeout
        for w in self.workers:
            if w.exit_code is None and w.how is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.exit_code = w.proc.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        for w in self.workers:
            if w.alive():
                w.proc.kill()
                w.proc.wait()


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Rig:
    s3: Any
    sqs: Any
    bucket: str
    queue: str
    dlq: str
    status: str
    events: list[dict[str, Any]] = field(default_factory=list)
    invalid_events: list[str] = field(default_factory=list)

    def collect(self) -> None:
        """Move every status event now visible into ``events`` (schema checked), stamped with arrival."""
        while msgs := self.sqs.receive_message(QueueUrl=self.status, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=0).get("Messages", []):
            for m in msgs:
                event = json.loads(m["Body"])
                errors = [e.message for e in EVENT_SCHEMA.iter_errors(event)]
                if errors:
                    self.invalid_events.append(f"{event}: {errors[0]}")
                self.events.append({**event, "_at": time.time()})
                self.sqs.delete_message(QueueUrl=self.status, ReceiptHandle=m["ReceiptHandle"])

    def counts(self, url: str) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def of(self, job_id: str | None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["jobId"] == job_id]


def make_rig(endpoint: str, visibility: int, max_receives: int) -> Rig:
    s3, sqs, bucket = clients(endpoint, "soak")
    tag = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"soak-dlq-{tag}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"soak-jobs-{tag}", Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives}),
    })["QueueUrl"]
    status = sqs.create_queue(QueueName=f"soak-status-{tag}")["QueueUrl"]
    return Rig(s3, sqs, bucket, queue, dlq, status)


def done(rig: Rig, jobs: list[Job]) -> bool:
    """Every job sent and finished (valid: a SUCCEEDED that is not a duplicate; invalid: a permanent
    FAILED), and nothing left on the job queue."""
    if any(j.sent_at is None for j in jobs):
        return False
    nameless = sum(j.job_id is None for j in jobs)
    if sum(_permanent(e) for e in rig.of(None)) < nameless:
        return False
    for j in jobs:
        if j.job_id is None:
            continue
        events = rig.of(j.job_id)
        if not any((_original_success(e) if j.valid else _permanent(e)) for e in events):
            return False
    return rig.counts(rig.queue) == (0, 0)


def _original_success(e: dict[str, Any]) -> bool:
    return e["status"] == "SUCCEEDED" and not e.get("duplicate")


def _permanent(e: dict[str, Any]) -> bool:
    return e["status"] == "FAILED" and bool(e.get("error", {}).get("permanent"))


@dataclass
class Options:
    minutes: float
    jobs: int
    workers: int
    fault_every: float
    seed: int
    visibility: int
    max_receives: int
    drain: float
    min_lease: float
    fault_rate: float
    storm_s: float
    storm_rate: float
    settle: float
    concurrency: int


def soak(opts: Options, work: Path) -> dict[str, Any]:
    """Run the soak; returns the result (``invariants`` among it)."""
    rng = random.Random(opts.seed)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    faults: list[dict[str, Any]] = []
    with serve() as server:
        rig = make_rig(server.endpoint, opts.visibility, opts.max_receives)
        for kind in {k.source for k in KINDS.values() if k.source}:
            path = clip(kind)
            rig.s3.upload_file(str(path), rig.bucket, f"in/{kind}")
        proxy = FaultProxy(int(server.endpoint.rsplit(":", 1)[1]), rate=opts.fault_rate, seed=opts.seed)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": os.environ["HOME"],
               "PYTHONPATH": str(REPO), **s3_env(proxy.endpoint), "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "STREAMUP_WEIGHTS_DIR": str(WEIGHTS),
               "STREAMUP_OFFLINE": "1", "STREAMUP_MIN_LEASE_SECONDS": f"{opts.min_lease:g}"}
        worker_args = ["--queue-url", rig.queue, "--bucket", rig.bucket, "--status-queue-url", rig.status,
                       "--metrics-port", "0", "--poll-seconds", "1", "--retry-delay", "1",
                       "--drain-seconds", f"{opts.drain:g}", "--concurrency", str(opts.concurrency),
                       "--log-format", "json", "--debug"]
        fleet = Fleet(env, worker_args, logs)
        try:
            for _ in range(opts.workers):
                fleet.start()
            _wait_ready(fleet, 600)
            run = f"soak{opts.seed}-{uuid.uuid4().hex[:4]}"
            jobs = workload(opts.jobs, opts.seed, opts.minutes * 60 * SEND_SHARE, run)
            t0 = time.time()
            drive(rig, fleet, proxy, jobs, faults, opts, rng, t0)
            finished = time.time()
            rig.collect()
            for w in fleet.live():
                fleet.terminate(w, "end")
            fleet.reap(opts.drain + 60)
            rig.collect()
            invariants, job_rows = check(rig, fleet, jobs, faults, work, opts)
        finally:
            fleet.close()
            proxy.close()
    successes = [j for j in jobs if j.valid and any(e["status"] == "SUCCEEDED" for e in rig.of(j.job_id))]
    hours = max(1e-9, (finished - t0) / 3600)
    return {"faults": {"scheduled": Counter(f["fault"] for f in faults), "proxy": proxy.counts(),
                       "log": faults},
            "invariants": invariants, "jobs": job_rows, "jobs_sent": len(jobs),
            "messages_sent": sum(j.copies for j in jobs), "valid_jobs_succeeded": len(successes),
            "seconds": round(finished - t0, 1), "jobs_per_hour": round(len(successes) / hours, 1),
            "workers_started": len(fleet.workers),
            "workers": [{"name": w.name, "how": w.how, "exit": w.exit_code, "log": str(w.log_path),
                         "lived_s": round((w.stopped or time.time()) - w.started, 1)} for w in fleet.workers]}


def _wait_ready(fleet: Fleet, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not all(w.ready() for w in fleet.live()):
        dead = [w for w in fleet.workers if not w.alive()]
        if dead or time.monotonic() > deadline:
            tail = "\n".join(dead[0].log_path.read_text().splitlines()[-5:]) if dead else ""
            raise SystemExit(f"soak: workers did not start ({len(dead)} died){': ' + tail if tail else ''}")
        time.sleep(0.5)


def drive(rig: Rig, fleet: Fleet, proxy: FaultProxy, jobs: list[Job], faults: list[dict[str, Any]],
          opts: Options, rng: random.Random, t0: float) -> None:
    """Send the jobs on schedule and strike a fault every ``fault_every`` s until every job is done (or
    ``minutes`` + ``settle`` have passed); workers that die are replaced."""
    deadline = t0 + opts.minutes * 60 + opts.settle
    fault_window = t0 + opts.minutes * 60
    next_fault = t0 + opts.fault_every
    order: list[str] = []
    pending: tuple[str, float] | None = None  # a SIGKILL waiting for a busy worker, until then
    empty_since: float | None = None
    while time.time() < deadline:
        now = time.time()
        for j in jobs:
            if j.sent_at is None and now - t0 >= j.send_at:
                _send(rig, j)
        rig.collect()
        if pending is None and now >= next_fault and now < fault_window:
            if not order:  # each round strikes every fault once, in a seeded order
                order = list(FAULTS)
                rng.shuffle(order)
            pending = (order.pop(), now + opts.fault_every / 2)
            next_fault = now + opts.fault_every
        if pending is not None and _strike(pending, fleet, proxy, faults, opts, rng, t0):
            pending = None
        for w in fleet.workers:
            if w.how is None and not w.alive():  # died on its own: a finding; replace it
                w.how, w.stopped, w.exit_code = "crashed", time.time(), w.proc.returncode
                faults.append({"t": round(time.time() - t0, 1), "fault": "crash", "worker": w.name})
                fleet.start()
        fleet.reap()
        if now >= fault_window and done(rig, jobs):  # the soak lasts --minutes at least
            time.sleep(3)  # late duplicates and events
            rig.collect()
            return
        # Everything sent and the job queue empty (nothing visible, in flight or waiting out a retry): no
        # event can come any more (a worker sends a job's last event before it deletes the message), so a
        # job still unfinished is lost (dead-lettered, or deleted without its event). Stop after a grace.
        if all(j.sent_at is not None for j in jobs) and rig.counts(rig.queue) == (0, 0) \
                and not done(rig, jobs):
            empty_since = empty_since or time.time()
            if time.time() - empty_since > STALL_S:
                return
        else:
            empty_since = None
        time.sleep(0.5)


def _send(rig: Rig, job: Job) -> None:
    """All copies at once (the duplicate case: two messages with one body, side by side on the queue)."""
    rig.sqs.send_message_batch(QueueUrl=rig.queue, Entries=[
        {"Id": str(i), "MessageBody": job.body} for i in range(job.copies)])
    job.sent_at = time.time()


def _strike(pending: tuple[str, float], fleet: Fleet, proxy: FaultProxy, faults: list[dict[str, Any]],
            opts: Options, rng: random.Random, t0: float) -> bool:
    """Carry out the pending fault; False: not yet (a SIGKILL or SIGTERM waits up to its limit for a busy
    worker). A SIGKILL spares workers running a job that a SIGKILL already cut (``KILLS_PER_JOB``)."""
    fault, until = pending
    entry: dict[str, Any] = {"t": round(time.time() - t0, 1), "t_abs": time.time(), "fault": fault}
    if fault == "storm":
        proxy.storm(opts.storm_s, opts.storm_rate)
        entry.update(seconds=opts.storm_s, rate=opts.storm_rate)
        faults.append(entry)
        return True
    late = time.time() >= until
    ready = [w for w in fleet.live() if w.ready()]
    if fault == "sigkill":
        killed = Counter(job for f in faults if f["fault"] == "sigkill" for job in f.get("jobs", ()))
        ready = [w for w in ready
                 if all(killed[job] < KILLS_PER_JOB for job in _runs_open_at_end(w.records()))]
    running = {w.name: w.in_progress() for w in ready}
    busy = [w for w in ready if running[w.name]]
    if not busy and not late:
        return False
    if not ready:
        faults.append({**entry, "fault": f"{fault}-skipped"})  # every worker holds a job killed before
        return True
    target = rng.choice(busy or ready)
    entry.update(worker=target.name, busy=bool(busy), running=running[target.name],
                 jobs=sorted(_runs_open_at_end(target.records())))
    if fault == "sigkill":
        fleet.kill(target)
    else:
        fleet.terminate(target, "sigterm")
    replacement = fleet.start()
    entry["replacement"] = replacement.name
    faults.append(entry)
    return True


# -- the oracle ----------------------------------------------------------------------------------------


def check(rig: Rig, fleet: Fleet, jobs: list[Job], faults: list[dict[str, Any]], work: Path,
          opts: Options) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Every invariant, each ``{"held": bool, "details": [...]}``, and one row per job."""
    inv: dict[str, dict[str, Any]] = {}

    def verdict(name: str, problems: list[Any], facts: dict[str, Any] | None = None, **extra: Any) -> None:
        inv[name] = {"held": not problems, "details": problems, **(facts or {}), **extra}

    rows, frames = _outputs(rig, jobs, work)
    killed_holding = {job for f in faults if f.get("fault") == "sigkill" for job in f.get("jobs", ())}
    reported_late = [r for r in rows if r["valid"] and r["job"] in killed_holding
                     and r["original_successes"] == 0 and r["duplicate_successes"]
                     and not r["permanent_failures"]]
    verdict("valid_jobs_succeeded_once", [
        f"{r['job']}: {r['original_successes']} SUCCEEDED without duplicate, {r['permanent_failures']} "
        f"permanent FAILED" for r in rows if r["valid"] and r not in reported_late
        and (r["original_successes"] != 1 or r["permanent_failures"])],
        explained=[f"{r['job']}: the worker that published it was SIGKILLed before it could report; the next "
                   f"delivery found the job's own output and reported SUCCEEDED (duplicate: true)"
                   for r in reported_late])
    verdict("outputs_faithful", [f"{r['job']}: {r['fidelity']}" for r in rows
                                 if r["valid"] and r["fidelity"] != "ok"])
    verdict("duplicates_marked", [
        f"{r['job']}: sent {r['copies']}x, {r['duplicate_successes']} SUCCEEDED with duplicate: true"
        for r in rows if r["valid"] and r["copies"] > 1 and r["duplicate_successes"] < r["copies"] - 1])
    verdict("invalid_jobs_failed_once", *_failed_once(rig, fleet, jobs))
    verdict("events_match_schema", rig.invalid_events)
    queues = {"jobs": rig.counts(rig.queue), "dlq": rig.counts(rig.dlq)}
    verdict("queues_empty", [f"{q}: {v[0]} visible, {v[1]} in flight" for q, v in queues.items()
                             if v != (0, 0)])
    dead = _drain(rig.sqs, rig.dlq)
    permanent_ids = {e["jobId"] for e in rig.events if _permanent(e)}
    verdict("dlq_only_after_permanent_failed", [
        f"dead-lettered without a permanent FAILED: {_job_of(body)!r} ({body[:120]})"
        for body in dead if _job_of(body) not in permanent_ids], dead_lettered=len(dead))
    work_objects = [o["Key"] for o in rig.s3.list_objects_v2(Bucket=rig.bucket, Prefix="streamup-work/")
                    .get("Contents", [])]
    verdict("work_area_empty", work_objects)
    uploads, strays = _uploads(rig, fleet, jobs, faults)
    verdict("open_uploads_only_from_sigkilled", strays, uploads=uploads)
    verdict("graceful_stops_exit_0", [f"{w.name} ({w.how}): exit {w.exit_code}" for w in fleet.workers
                                      if w.how in ("sigterm", "end") and w.exit_code != 0])
    verdict("no_worker_crashed", [f"{w.name}: exit {w.exit_code}" for w in fleet.workers
                                  if w.how == "crashed"])
    verdict("long_job_one_run_per_lease", *_long_job(rig, fleet, jobs, opts))
    verdict("metrics_match_truth", *_metrics(fleet, jobs, frames))
    for r in rows:
        r.pop("job_id")
    return inv, rows


def _failed_once(rig: Rig, fleet: Fleet, jobs: list[Job]) -> tuple[list[str], dict[str, Any]]:
    """Each invalid job: one final event, a permanent FAILED (messages without a usable jobId: one each,
    under jobId null). A worker sends a job's last event before it deletes the message, so a SIGKILL
    between the two brings the message back and the FAILED is sent again; an extra FAILED counts as
    explained only when the worker that sent an earlier one was SIGKILLed within ``KILL_WINDOW_S`` of it."""
    sent_by = {(str(r["status"].get("jobId")), r["status"].get("timestamp")): w for w in fleet.workers
               for r in w.records() if r.get("event") == "status" and isinstance(r.get("status"), dict)}
    groups = [(j.name, j.job_id, 1) for j in jobs if not j.valid and j.job_id is not None]
    nameless = sum(j.job_id is None for j in jobs)
    if nameless:
        groups.append((f"{nameless} message(s) without a usable jobId", None, nameless))
    problems, explained_all = [], []
    for label, job_id, expected in groups:
        finals = [e for e in rig.of(job_id) if e["status"] == "SUCCEEDED" or _permanent(e)]
        explained = []
        for e in finals:
            w = sent_by.get((str(job_id), e["timestamp"]))
            sent = _epoch(e["timestamp"])
            if w is not None and w.how == "sigkill" and w.stopped is not None \
                    and 0 <= w.stopped - sent <= KILL_WINDOW_S:
                explained.append(f"{label}: {w.name} sent FAILED and was SIGKILLed {w.stopped - sent:.1f} s "
                                 "later, before deleting the message")
        if not all(_permanent(e) for e in finals) or not expected <= len(finals) <= expected + len(explained):
            problems.append(f"{label}: finals {[_short(e) for e in finals]}")
        explained_all += explained
    return problems, {"explained_repeats": explained_all}


def _epoch(timestamp: str) -> float:
    """An event's ``timestamp`` (UTC, milliseconds; the workers share this machine's clock) in seconds."""
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def _short(e: dict[str, Any]) -> str:
    code = e.get("error", {}).get("code", "")
    return f"{e['status']}{' permanent' if _permanent(e) else ''} {code}".strip()


def _job_of(body: str) -> str | None:
    try:
        value = json.loads(body).get("jobId")
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


def _drain(sqs: Any, url: str) -> list[str]:
    """Bodies of every message on ``url`` (read and deleted)."""
    bodies: list[str] = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                      VisibilityTimeout=60).get("Messages", []):
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _outputs(rig: Rig, jobs: list[Job], work: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One row per job; each valid job's output downloaded, compared with its input by the independent
    checker (``../shared/tools/fidelity.py``), its frames counted by ffprobe (``frames``: job id ->
    frames)."""
    rows, frames = [], {}
    out_dir = work / "outputs"
    out_dir.mkdir(exist_ok=True)
    for j in jobs:
        events = rig.of(j.job_id) if j.job_id is not None else []
        finals = [_short(e) for e in events if e["status"] in ("SUCCEEDED", "FAILED") and not (
            e["status"] == "FAILED" and not _permanent(e))]
        originals = [e for e in events if _original_success(e)]
        successes = originals or [e for e in events if e["status"] == "SUCCEEDED"]
        row: dict[str, Any] = {
            "job": j.name, "job_id": j.job_id, "kind": j.kind, "valid": j.valid, "copies": j.copies,
            "original_successes": len(originals),
            "duplicate_successes": sum(e["status"] == "SUCCEEDED" and bool(e.get("duplicate"))
                                       for e in events),
            "permanent_failures": sum(_permanent(e) for e in events),
            "transient_failures": sum(e["status"] == "FAILED" and not _permanent(e) for e in events),
            "runs": sum(e["status"] == "RUNNING" for e in events), "finals": finals, "fidelity": None,
            "frames": None}
        if j.valid and successes and j.source is not None:
            uri = successes[0]["outputUri"]
            key = uri.split("/", 3)[3]
            local = out_dir / key.replace("/", "_")
            try:
                rig.s3.download_file(rig.bucket, key, str(local))
                check = subprocess.run([sys.executable, str(FIDELITY), "compare", str(j.source), str(local),
                                        "--scale", str(j.scale)], capture_output=True, text=True, timeout=600)
                said = (check.stdout + check.stderr).strip()[-400:]
                row["fidelity"] = "ok" if check.returncode == 0 else said
                row["frames"] = frames[str(j.job_id)] = frames_of(local)
            except Exception as e:  # a missing output is a finding, reported in its row
                row["fidelity"] = f"cannot check {uri}: {e}"
            row["seconds"] = successes[0].get("seconds")
        rows.append(row)
    return rows, frames


def _runs_open_at_end(records: list[dict[str, Any]]) -> Counter[str]:
    """Job ids this worker's log shows started (RUNNING sent, or a segment begun) and never ended, each
    with how many of its runs were open (two copies of one job may run at once on one worker)."""
    open_: Counter[str] = Counter()
    for r in records:
        if r.get("event") == "status" and isinstance(r.get("status"), dict) \
                and r["status"].get("status") == "RUNNING":
            open_[str(r["status"]["jobId"])] += 1
        elif r.get("event") == "segment" and r.get("status") == "started":
            open_[str(r.get("job"))] += 1
        elif (r.get("event") == "job" and r.get("status") in FINAL_JOB_STATUSES) or (
                r.get("event") == "segment" and r.get("status") in ("done", "reused")):
            open_[str(r.get("job"))] -= 1
    return Counter({job: n for job, n in open_.items() if n > 0})


def _runs_cut(records: list[dict[str, Any]], job_id: str) -> int:
    """Runs of ``job_id`` on a worker that a fault stopped, which did not succeed there (cancelled by the
    drain, or still open when the worker died)."""
    started = sum(r.get("event") == "status" and isinstance(r.get("status"), dict)
                  and r["status"].get("status") == "RUNNING" and r["status"].get("jobId") == job_id
                  for r in records)
    succeeded = sum(r.get("event") == "job" and r.get("job") == job_id and r.get("status") == "succeeded"
                    for r in records)
    return max(0, started - succeeded)


def _uploads(rig: Rig, fleet: Fleet, jobs: list[Job],
             faults: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Open multipart uploads, each matched to its own (SIGKILLed worker, job it held when it died) pair:
    the job's output key, or a work key of a fan-out job. (moto stamps every upload with one fixed
    ``Initiated`` time, so the match cannot use time.) An upload of a job one of whose deliveries never
    sent RUNNING may instead match a run a killed worker had under way without a RUNNING in its log
    (``streamup_jobs_in_progress`` at the kill above the runs its log shows), killed after the job was
    sent. Any upload left over is a stray."""
    output_of = {f"out/{j.name}{KINDS[j.kind].ext}": j.name for j in jobs}
    fanned = {j.name for j in jobs if "segmentSeconds" in (KINDS[j.kind].params or {})}
    held = [(w.name, job) for w in fleet.workers if w.how == "sigkill"
            for job in _runs_open_at_end(w.records()).elements()]
    # Runs a killed worker had begun without having sent (nor logged) their RUNNING event yet: its consumer
    # thread sends it, and may be seconds behind the job thread (in a receive, or retrying under faults).
    silent = [(f["worker"], f["t_abs"]) for f in faults if f["fault"] == "sigkill"
              for _ in range(max(0, f.get("running", 0) - len(f.get("jobs", ()))))]
    listed, strays = [], []
    for u in rig.s3.list_multipart_uploads(Bucket=rig.bucket).get("Uploads", []):
        key = u["Key"]
        pair = next((p for p in held if p[1] == output_of.get(key)
                     or (key.startswith("streamup-work/") and p[1] in fanned)), None)
        if pair is not None:
            held.remove(pair)
        elif (job := next((j for j in jobs if output_of.get(key) == j.name), None)) is not None \
                and _delivery_unannounced(rig.of(job.job_id)):
            slot = next((s for s in silent if job.sent_at is not None and job.sent_at < s[1]), None)
            if slot is not None:
                silent.remove(slot)
                pair = slot
        listed.append({"key": key, "sigkilled_worker": pair[0] if pair else None})
        if pair is None:
            strays.append(f"open upload {key} from no SIGKILLed worker (or more than its jobs explain)")
    return listed, strays


def _delivery_unannounced(events: list[dict[str, Any]]) -> bool:
    """Some delivery of this job began without a RUNNING event: an attempt number is missing below the
    highest one seen."""
    attempts = {e.get("attempt") for e in events if e["status"] == "RUNNING"}
    return bool(attempts) and set(range(1, max(a or 1 for a in attempts) + 1)) - attempts != set()


def _long_job(rig: Rig, fleet: Fleet, jobs: list[Job], opts: Options) -> tuple[list[str], dict[str, Any]]:
    """The long job lasted at least 5 visibility timeouts and ran once, plus once per run a fault cut (a
    SIGKILL, or a SIGTERM whose drain cancelled it): any other extra run means its lease ran out under a
    live worker, so heartbeats failed."""
    problems: list[str] = []
    facts: dict[str, Any] = {}
    for j in jobs:
        if j.kind != "long":
            continue
        events = rig.of(j.job_id)
        running = [e for e in events if e["status"] == "RUNNING"]
        success = next((e for e in events if _original_success(e)), None)
        interrupted = sum(_runs_cut(w.records(), str(j.job_id)) for w in fleet.workers
                          if w.how in ("sigkill", "sigterm"))
        # the run that published: the last RUNNING before the original SUCCEEDED (a redelivery after it,
        # e.g. when the delete was lost to a fault, may send RUNNING again and then find the job done)
        before = [e for e in running if success is not None and e["_at"] <= success["_at"]]
        lasted = (success["_at"] - before[-1]["_at"]) if success and before else None
        facts[j.name] = {"runs": len(running), "interrupted_by_faults": interrupted,
                         "last_run_s": None if lasted is None else round(lasted, 1),
                         "visibility_timeouts": None if lasted is None
                         else round(lasted / opts.visibility, 1)}
        if success is None:
            problems.append(f"{j.name}: never succeeded")
            continue
        if len(running) > 1 + interrupted:
            problems.append(f"{j.name}: {len(running)} runs, only {interrupted} interrupted by a fault")
        if lasted is not None and lasted < 5 * opts.visibility:
            problems.append(f"{j.name}: its last run took {lasted:.1f} s, under 5 visibility timeouts "
                            f"({5 * opts.visibility} s): it proves no heartbeat (make the clip longer)")
    if not facts:
        problems.append("no long job in this workload (raise --jobs)")
    return problems, {"long_jobs": facts}


def _metrics(fleet: Fleet, jobs: list[Job], frames: dict[str, int]) -> tuple[list[str], dict[str, Any]]:
    """Each scrape of a surviving worker against the truth of the runs its log shows ended before it.
    Exactly, when nothing else ran there (no run in progress, cancelled, retried or failed, no fan-out
    segment): ``streamup_jobs_total{status=succeeded}`` = its runs that succeeded, and per stage
    ``streamup_frames_total`` = the ffprobe frames of their outputs. Otherwise within bounds: at least that,
    at most that plus one job (jobs) or every other run's whole input (frames) per other run; a run whose
    metrics are counted but whose log line lags the scrape is such an other run."""
    input_frames = {str(j.job_id): _input_frames(j) for j in jobs if j.valid and j.source is not None}
    problems, table = [], []
    for w in fleet.workers:
        for s in w.scrapes:
            succeeded = [str(r["job"]) for r in s.records if r.get("event") == "job"
                         and r.get("status") == "succeeded"]
            starts = Counter(str(r["status"]["jobId"]) for r in s.records if r.get("event") == "status"
                             and isinstance(r.get("status"), dict) and r["status"].get("status") == "RUNNING")
            segments = [str(r.get("job")) for r in s.records if r.get("event") == "segment"
                        and r.get("status") == "started"]
            ended = Counter(str(r.get("job")) for r in s.records if r.get("event") == "job"
                            and r.get("status") in FINAL_JOB_STATUSES)
            in_progress = int(s.samples.get("streamup_jobs_in_progress{}", 0))
            # runs begun whose RUNNING event the consumer has not sent (nor logged) yet
            unlogged = max(0, in_progress - sum((starts - ended).values()))
            others = starts - Counter(succeeded)
            others.update(segments)
            truth = sum(frames.get(job, 0) for job in succeeded)
            slack = sum(input_frames.get(job, 0) * n for job, n in others.items()) \
                + unlogged * max(input_frames.values(), default=0)
            unknown = [job for job in succeeded if job not in frames]
            jobs_counted = sum(v for k, v in s.samples.items() if k.startswith("streamup_jobs_total{")
                               and "status=succeeded" in k)
            row = {"worker": w.name, "when": s.why, "succeeded_runs": len(succeeded),
                   "jobs_succeeded_counted": jobs_counted, "true_frames": truth,
                   "other_runs": sum(others.values()) + unlogged, "frames": {}}
            exact = not others and in_progress == 0
            runs = len(succeeded)
            most = runs + sum(others.values()) + unlogged
            if (exact and jobs_counted != runs) or not runs <= jobs_counted <= most:
                problems.append(f"{w.name} {s.why}: streamup_jobs_total{{status=succeeded}} = "
                                f"{jobs_counted}, its log shows {runs} succeeded runs"
                                f"{'' if exact else f' and {sum(others.values())} other(s)'}")
            for stage in STAGES:
                counted = s.samples.get(f"streamup_frames_total{{stage={stage}}}", 0)
                row["frames"][stage] = counted
                if unknown:
                    continue
                if (exact and counted != truth) or not truth <= counted <= truth + slack:
                    margin = "" if exact else f" (+ up to {slack} from other runs)"
                    problems.append(f"{w.name} {s.why}: streamup_frames_total{{stage={stage}}} = "
                                    f"{counted:g}, truth {truth}{margin} for {len(succeeded)} run(s)")
            row["exact"] = exact
            table.append(row)
    if not table:
        problems.append("no surviving worker was scraped")
    return problems, {"scrapes": table}


def _input_frames(job: Job) -> int:
    assert job.source is not None
    return _frames(job.source)


@functools.cache
def _frames(path: Path) -> int:
    return frames_of(path)


# -- report --------------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    proxy = result["faults"]["proxy"]
    lines = [f"chaos soak: {result['jobs_sent']} jobs ({result['messages_sent']} messages), "
             f"{result['valid_jobs_succeeded']} valid succeeded in {fmt_seconds(result['seconds'])} "
             f"({result['jobs_per_hour']} jobs/h), {result['workers_started']} workers started",
             "faults: " + ", ".join(f"{k} {v}" for k, v in sorted(result["faults"]["scheduled"].items()))
             + " | proxy: " + ", ".join(f"{k} {v}" for k, v in proxy.items()),
             "", "| invariant | outcome | details |", "| --- | --- | --- |"]
    for name, v in result["invariants"].items():
        details = "; ".join(str(d) for d in v["details"][:3]) + (" ..." if len(v["details"]) > 3 else "")
        lines.append(f"| {name} | {'held' if v['held'] else 'BROKEN'} | {details} |")
    return "\n".join(lines)


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "streamup"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    return out.stdout.strip() + (" (streamup/ modified)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30,
                   help="jobs are sent over the first 90 %%; faults strike until then (default 30)")
    p.add_argument("--jobs", type=int, default=120)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--fault-every", type=float, default=20, metavar="S")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=RESULTS / "soak.json")
    p.add_argument("--visibility", type=int, default=2, metavar="S",
                   help="job queue visibility timeout (default 2: the long job, 15-20 s on a quiet 2-core "
                   "machine, lasts at least 5 of them)")
    p.add_argument("--max-receives", type=int, default=5, help="redrive to the DLQ after N receives "
                   "(5: deploy/aws/streamup-fleet.yaml's value)")
    p.add_argument("--drain", type=float, default=3, metavar="S", help="the workers' --drain-seconds")
    p.add_argument("--min-lease", type=float, default=4, metavar="S",
                   help="STREAMUP_MIN_LEASE_SECONDS (default 4: low enough that the long job needs "
                   "heartbeats, high enough for a consumer starved of CPU for 2 s on a loaded machine)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--fault-rate", type=float, default=0.02, help="share of requests the proxy breaks")
    p.add_argument("--storm", type=float, default=6, metavar="S", help="length of a storm fault")
    p.add_argument("--storm-rate", type=float, default=0.3, help="share of requests broken during a storm")
    p.add_argument("--settle", type=float, default=900, metavar="S",
                   help="after --minutes, how long jobs may still take to finish")
    a = p.parse_args(argv)
    opts = Options(a.minutes, a.jobs, a.workers, a.fault_every, a.seed, a.visibility, a.max_receives, a.drain,
                   a.min_lease, a.fault_rate, a.storm, a.storm_rate, a.settle, a.concurrency)
    work = Path(tempfile.mkdtemp(prefix="streamup-soak-"))
    result = {"command": "python -m benchmarks.soak " + " ".join(sys.argv[1:] if argv is None else argv),
              "cpu": cpu_model(), "cpus": os.cpu_count(), "commit": git_commit(),
              "options": vars(opts), "logs": str(work / "logs"), **soak(opts, work),
              "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(a.out, result)
    print(table(result))
    print(f"\nwritten {a.out}; worker logs in {work / 'logs'}")
    return 0 if all(v["held"] for v in result["invariants"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
