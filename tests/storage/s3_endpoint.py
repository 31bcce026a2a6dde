"""A real S3 HTTP endpoint on 127.0.0.1: moto's server app behind a byte-counting WSGI layer.

This is smart_open's own way of testing S3 (moto in server mode, plain HTTP on a free port), with one layer
added in front: every GET response body is counted as werkzeug writes it to the socket, so a test can say
exactly how many bytes the server sent, and every UploadPart request is recorded with its answer, so a test
can say how many parts went up. Nothing is patched in-process: boto3 and urllib3 talk HTTP to it.
The tests' fixtures and benchmarks/s3_storage.py both start it through ``serve``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

REGION = "us-east-1"


@dataclass
class Get:
    path: str
    range: str | None
    status: str = ""
    bytes: int = 0


@dataclass
class PartUpload:
    """One UploadPart request as the server saw it: object path, part number, body size, the answer."""

    path: str
    number: int
    bytes: int
    status: str = ""


@dataclass
class CountingApp:
    """WSGI middleware: records every GET with its Range header and the body bytes actually sent, and every
    UploadPart (``parts``) with the status it was answered.

    ``fail_uploads`` makes every upload_part answer 500 (a store that breaks mid-upload), so a test can watch
    the sink give up and abort.
    """

    app: Callable[..., Iterable[bytes]]
    gets: list[Get] = field(default_factory=list)
    parts: list[PartUpload] = field(default_factory=list)
    fail_uploads: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        query = environ.get("QUERY_STRING", "")
        if method == "PUT" and "partNumber=" in query:
            return self._upload_part(environ, start_response)
        if method != "GET" or environ["PATH_INFO"].count("/") < 2:
            return self.app(environ, start_response)  # not an object GET (bucket listings and the like)
        record = Get(environ["PATH_INFO"], environ.get("HTTP_RANGE"))
        with self.lock:
            self.gets.append(record)

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            record.status = status
            return start_response(status, headers, *exc)

        return self._count(self.app(environ, recording_start_response), record)

    def _upload_part(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        number = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("partNumber", ["0"])[0]
        record = PartUpload(environ["PATH_INFO"], int(number), int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.parts.append(record)
        if self.fail_uploads:
            environ["wsgi.input"].read(record.bytes)
            record.status = "500 Internal Server Error"
            start_response(record.status, [("Content-Type", "application/xml")])
            return [b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"]

        def recording_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            record.status = status
            return start_response(status, headers, *exc)

        return self.app(environ, recording_start_response)

    def uploaded_parts(self, key: str) -> list[PartUpload]:
        """UploadPart requests for ``key`` (any bucket) the server accepted since the last ``reset``."""
        with self.lock:
            return [p for p in self.parts if p.path.endswith("/" + key) and p.status.startswith("200")]

    @staticmethod
    def _count(body: Iterable[bytes], record: Get) -> Iterator[bytes]:
        try:
            for chunk in body:
                record.bytes += len(chunk)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def served(self, key: str) -> int:
        """Body bytes sent for GETs of ``key`` (any bucket) since the last ``reset``."""
        with self.lock:
            return sum(g.bytes for g in self.gets if g.path.endswith("/" + key))

    def reset(self) -> None:
        with self.lock:
            self.gets.clear()
            self.parts.clear()
        self.fail_uploads = False


@dataclass
class S3Server:
    endpoint: str
    counter: CountingApp


@contextlib.contextmanager
def serve(tls: tuple[str, str] | None = None) -> Iterator[S3Server]:
    """A moto server on a free port (the OS picks it) for the duration of the ``with``; ``tls`` is a
    (certificate, key) file pair to serve HTTPS. moto's state is per process, so two servers share buckets."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns everything else
    counter = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, counter, threaded=True, request_handler=MotoRequestHandler,
                         ssl_context=tls)
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    try:
        yield S3Server(f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}", counter)
    finally:
        server.shutdown()
        thread.join(timeout=10)


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment a user would set for an S3-compatible store; subprocess tests pass it on."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION}


class CuttableProxy:
    """A TCP proxy in front of an endpoint; ``cut()`` drops every connection and stops listening: a network
    that goes away mid-run (what a 500 from the server cannot imitate)."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._sockets = self._sockets, []
        self._listener.close()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
