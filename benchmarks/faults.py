"""A fault-injecting HTTP proxy for the chaos soak: workers talk to S3 and SQS through it, the soak does not.

It sits on 127.0.0.1 in front of the local S3+SQS endpoint (moto) and forwards every request, except that
with probability ``rate`` (raised for a few seconds by ``storm``) a request gets one of the faults a real
store or queue produces under load instead:

- ``503``: ``503 Service Unavailable`` (S3's ``ServiceUnavailable`` XML, SQS's JSON error);
- ``slowdown``: S3's ``503 SlowDown`` (throttling; S3 requests only, SQS requests get a plain 503);
- ``reset``: the connection is closed with a TCP RST before anything is answered;
- ``slow``: the request is held ``slow_s`` seconds, then forwarded (a slow network or a busy store).

Every fault is injected *before* the request reaches the endpoint, so nothing is done twice behind the
client's back: a fault costs the client a retry (botocore's standard mode: 5 attempts with backoff), never a
second side effect. That keeps the soak's oracle exact (a status event sent once is received once).

One thing it adds that is not a fault: SQS ``ReceiveMessage`` calls reach moto one at a time. moto's
receive is not atomic: two workers long-polling one queue, woken by one send, can both take the same
message (seen in the soak: an invalid job's two FAILED events 0.1 s apart from two workers, on a queue with
a 2 s visibility timeout). Real SQS hands a message to one receiver per visibility timeout; serialising
receives here makes every second delivery in the soak the worker's doing, not moto's. A long poll is
turned into short polls (each alone against moto, 0.1 s apart) so that no worker waits on another's poll.
``injected`` counts the faults by kind, ``forwarded`` the requests passed on. ``hold_receives_s`` holds every
``ReceiveMessage`` that long before it is forwarded (the worst case of a stalled receive, for the leaser's
test).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("503", "slowdown", "reset", "slow")
#: Pause between the short polls that make up a worker's long poll (moto answers one in about 10 ms).
SHORT_POLL_S = 0.1
#: Headers that describe one hop's connection, not the request (RFC 9110 7.6.1): never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
                        "upgrade"})


class FaultProxy:
    """An HTTP/1.1 proxy on a free loopback port in front of ``upstream`` (``host:port`` on loopback)."""

    def __init__(self, upstream_port: int, *, rate: float = 0.0, kinds: tuple[str, ...] = KINDS,
                 slow_s: float = 2.0, seed: int = 0, hold_receives_s: float = 0.0) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.upstream_port = upstream_port
        self.rate, self.kinds, self.slow_s, self.hold_receives_s = rate, kinds, slow_s, hold_receives_s
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self._random = random.Random(seed)
        self._storm_until = 0.0
        self._storm_rate = 0.0
        self._lock = threading.Lock()
        self._receive_lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

            def do_GET(self) -> None:
                proxy._handle(self)

            do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def storm(self, seconds: float, rate: float) -> None:
        """Raise the fault rate to ``rate`` for the next ``seconds`` (a store having a bad minute)."""
        with self._lock:
            self._storm_until = time.monotonic() + seconds
            self._storm_rate = rate

    def counts(self) -> dict[str, int]:
        """Faults injected so far by kind (every kind present, zero included) and requests forwarded."""
        with self._lock:
            return {**{k: self.injected[k] for k in KINDS}, "forwarded": self.forwarded}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- per request (handler threads) -------------------------------------------------------------------

    def _pick(self, is_s3: bool) -> str | None:
        with self._lock:
            rate = self._storm_rate if time.monotonic() < self._storm_until else self.rate
            if self._random.random() >= rate:
                self.forwarded += 1
                return None
            kind = self._random.choice(self.kinds)
            if kind == "slowdown" and not is_s3:
                kind = "503"  # SQS has no SlowDown; its throttling answer is a 503 too
            self.injected[kind] += 1
            if kind == "slow":
                self.forwarded += 1
            return kind

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        try:
            self._answer(req)
        except OSError:  # the client went away (a worker killed mid-request): nothing to answer
            req.close_connection = True

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = _read_chunked(req) if "chunked" in req.headers.get("Transfer-Encoding", "") \
            else req.rfile.read(length)
        is_s3 = "AmazonSQS" not in req.headers.get("X-Amz-Target", "") and "Action=" not in req.path \
            and not body.startswith(b"Action=")
        kind = self._pick(is_s3)
        if kind == "reset":
            _reset(req.connection)
            req.close_connection = True
            return
        if kind in ("503", "slowdown"):
            _error(req, is_s3, "SlowDown" if kind == "slowdown" else "ServiceUnavailable")
            return
        if kind == "slow":
            time.sleep(self.slow_s)
        if "ReceiveMessage" in req.headers.get("X-Amz-Target", ""):
            time.sleep(self.hold_receives_s)
            self._receive(req, body)
        else:
            self._reply(req, self._exchange(req, body))

    def _receive(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        """A long poll made of short polls, each alone against moto (see the module's docstring): the lock is
        held for milliseconds, never for a whole long poll, so workers' consumer loops do not queue up."""
        request = json.loads(body or b"{}")
        deadline = time.monotonic() + float(request.get("WaitTimeSeconds") or 0)
        short = json.dumps({**request, "WaitTimeSeconds": 0}).encode()
        while True:
            with self._receive_lock:
                answer = self._exchange(req, short)
            if answer is None or answer[0] != 200 or json.loads(answer[2] or b"{}").get("Messages") \
                    or time.monotonic() >= deadline:
                self._reply(req, answer)
                return
            time.sleep(SHORT_POLL_S)

    def _exchange(self, req: BaseHTTPRequestHandler, body: bytes) -> tuple[int, str, bytes,
                                                                           list[tuple[str, str]]] | None:
        """The endpoint's answer (status, reason, body, headers) to the request with ``body``; None when it
        cannot be reached."""
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or req.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            upstream.request(req.command, req.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            return answer.status, answer.reason, answer.read(), answer.getheaders()
        except OSError:
            return None
        finally:
            upstream.close()

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler,
               answer: tuple[int, str, bytes, list[tuple[str, str]]] | None) -> None:
        if answer is None:
            _reset(req.connection)  # the endpoint went away: the client sees what it would see without us
            req.close_connection = True
            return
        status, reason, data, headers = answer
        req.send_response_only(status, reason)
        head = req.command == "HEAD"  # a HEAD's Content-Length is the object's, not this empty body's
        for k, v in headers:
            if k.lower() not in HOP_BY_HOP and (head or k.lower() != "content-length"):
                req.send_header(k, v)
        if not head:
            req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        if not head:
            req.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that drops its connection (a SIGKILLed worker) is part of the soak, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _read_chunked(req: BaseHTTPRequestHandler) -> bytes:
    """The body of a request sent with ``Transfer-Encoding: chunked``, de-chunked."""
    parts = []
    while (size := int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
        parts.append(req.rfile.read(size))
        req.rfile.readline()
    while req.rfile.readline() not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(parts)


def _reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client reads ``ConnectionResetError``, not a clean end."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass


def _error(req: BaseHTTPRequestHandler, is_s3: bool, code: str) -> None:
    if is_s3:
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                f"<Message>injected by the soak's fault proxy</Message></Error>").encode()
        ctype = "application/xml"
    else:
        body = b'{"__type": "com.amazonaws.sqs#ServiceUnavailable", "message": "injected by the fault proxy"}'
        ctype = "application/x-amz-json-1.0"
    req.send_response_only(503, "Service Unavailable")
    req.send_header("Content-Type", ctype)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(body)
