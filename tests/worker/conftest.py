"""Worker test rig: moto (S3 + SQS) on 127.0.0.1, workers as real ``streamup worker`` processes started with
the environment a systemd unit gives them, and a slow HTTPS file server for jobs that must last seconds (the
job contract has no ``http://``; the workers trust its certificate and may read from loopback).

Nothing is patched: the worker talks HTTP to moto and to the file server; the tests look only at what a
user could see (objects, open uploads, queue counts, status events, exit status, the JSON log on stderr).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, SHARED_WEIGHTS
from tests.storage.conftest import self_signed
from tests.storage.recorder import byte_range, tls_context
from tests.storage.s3_endpoint import CountingApp, s3_env, serve
from tests.worker.queues import clients, receive_all

STREAMUP = Path(sys.executable).with_name("streamup")  # the console script installed beside this Python
EVENT_SCHEMA = jsonschema.Draft202012Validator(
    json.loads((REPO / "schemas/status-event.schema.json").read_text())
)
TIERS = ("BASIC", "STANDARD", "PREMIUM", "PRO")


@dataclass
class Aws:
    """The moto endpoint, clients to check results with, one bucket and one status queue for the module."""

    endpoint: str
    counter: CountingApp
    s3: Any
    sqs: Any
    bucket: str
    status_url: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def put(self, key: str, path: Path) -> str:
        self.s3.upload_file(str(path), self.bucket, key)
        return key

    def exists(self, key: str) -> bool:
        return any(
            o["Key"] == key
            for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key).get("Contents", [])
        )

    def uploads(self) -> list[dict[str, Any]]:
        return self.s3.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    def queue(self, visibility: int, max_receives: int | None = None) -> tuple[str, str | None]:
        """A fresh job queue (and its dead-letter queue when ``max_receives`` is given)."""
        name = f"jobs-{uuid.uuid4().hex[:8]}"
        attributes = {"VisibilityTimeout": str(visibility)}
        dlq = None
        if max_receives is not None:
            dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn, "maxReceiveCount": max_receives}
            )
        return self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], dlq

    def send(self, queue_url: str, message: dict[str, Any] | str) -> None:
        body = message if isinstance(message, str) else json.dumps(message)
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def env(self, queue_url: str, **extra: str) -> dict[str, str]:
        """What a systemd unit's EnvironmentFile gives a worker: no inherited shell environment."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),  # this checkout's streamup, wherever the console script came from
            "LANG": "C.UTF-8",
            "HOME": os.environ["HOME"],
            **s3_env(self.endpoint),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "SQS_QUEUE_URL": queue_url,
            "S3_BUCKET_NAME": self.bucket,
            "STATUS_QUEUE_URL": self.status_url,
            "STREAMUP_WEIGHTS_DIR": str(SHARED_WEIGHTS),
            "STREAMUP_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
            "SSL_CERT_FILE": slow_files_tls()[0],  # SlowFiles' certificate, trusted like a CA
            "STREAMUP_ALLOWED_INPUT_HOSTS": "127.0.0.1",  # and its host, although it is loopback
            "STREAMUP_ALLOWED_INPUT_NETWORKS": "127.0.0.0/8",
        }
        env.update({f"STREAMUP_TIER_{t}_MODEL": "lanczos" for t in TIERS})  # an operator's tier override
        env.update(extra)
        return env

    def collect(self) -> None:
        """Move every status event that has arrived into ``events`` (each checked against the schema)."""
        for event in receive_all(self.sqs, self.status_url):
            EVENT_SCHEMA.validate(event)
            self.events.append(event)

    def of(self, job_id: str | None) -> list[dict[str, Any]]:
        self.collect()
        return [e for e in self.events if e["jobId"] == job_id]

    def wait(
        self, job_id: str | None, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not done(seen := self.of(job_id)):
            assert time.monotonic() < deadline, f"events of {job_id} so far: {seen}"
            time.sleep(0.2)
        return seen


def final(events: list[dict[str, Any]], count: int = 1) -> bool:
    """Predicate: ``count`` SUCCEEDED/FAILED events have arrived."""
    return sum(e["status"] in ("SUCCEEDED", "FAILED") for e in events) >= count


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    with serve() as server:
        s3, sqs, bucket = clients(server.endpoint, "worker")
        status = sqs.create_queue(QueueName=f"status-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        yield Aws(server.endpoint, server.counter, s3, sqs, bucket, status)


class WorkerProcess:
    """``streamup worker`` as a child process with a JSON log; every record is kept in ``records``."""

    def __init__(
        self, env: dict[str, str], *args: str, command: tuple[str, ...] = (str(STREAMUP), "worker")
    ) -> None:
        cmd = [
            *command,
            "--log-format",
            "json",
            "--poll-seconds",
            "1",
            "--retry-delay",
            "1",
            "--metrics-port",
            "0",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.records: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                self.records.append({"message": line.rstrip(), "event": "raw"})

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in list(self.records):
                if predicate(r):
                    return r
            assert self.proc.poll() is None or any(predicate(r) for r in self.records), self.log()
            time.sleep(0.1)
        raise AssertionError(f"no such log record within {timeout} s:\n{self.log()}")

    def ready(self) -> WorkerProcess:
        self.wait_for(lambda r: r.get("event") == "ready")
        return self

    @property
    def port(self) -> int:
        return int(self.wait_for(lambda r: r.get("event") == "http")["port"])

    def jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == "job" and status in (None, r.get("status"))]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)

    def log(self) -> str:
        return "\n".join(r.get("message", "") for r in self.records)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers; any still running at the end is killed."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *args: str, **kwargs: Any) -> WorkerProcess:
        started.append(WorkerProcess(env, *args, **kwargs))
        return started[-1]

    yield start
    for w in started:
        w.close()


@functools.cache
def slow_files_tls() -> tuple[str, str]:
    """One certificate for 127.0.0.1 (and its key) for every SlowFiles of the session."""
    return self_signed(Path(tempfile.mkdtemp(prefix="slowfiles-")))


class SlowFiles:
    """Files over HTTPS with Range on 127.0.0.1, each at its own rate (bytes/s): a slow link, so that a job
    lasts seconds while costing the CPU almost nothing. ``served`` counts body bytes sent per file."""

    def __init__(self, files: dict[str, tuple[Path, int]]) -> None:
        self.served = dict.fromkeys(files, 0)
        rig = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                if name not in files:
                    self.send_error(404)
                    return
                path, rate = files[name]
                data = path.read_bytes()
                start, stop = byte_range(self.headers.get("Range"), len(data))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
                self.send_header("Content-Length", str(stop - start))
                self.end_headers()
                with contextlib.suppress(OSError):  # the reader went away (a cancelled job)
                    for at in range(start, stop, 8192):
                        chunk = data[at : min(stop, at + 8192)]
                        self.wfile.write(chunk)
                        rig.served[name] += len(chunk)
                        time.sleep(len(chunk) / rate)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = tls_context(slow_files_tls()).wrap_socket(self._server.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
