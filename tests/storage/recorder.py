"""A small HTTP(S) file server on loopback that records every connection and request it gets.

For tests that must prove a request was *not* made (a refused job, a redirect not followed): it listens on
127.0.0.1 and, when asked, on ::1 too, so a request by any spelling of loopback would arrive and be seen.
Connections are counted as they are accepted, before any HTTP is parsed, so even a client that spoke the
wrong protocol to it would show. Files are served with HTTP Range (what the ranged reader needs); any path
can instead answer a redirect.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """[start, stop) that a ``Range: bytes=a-b`` header asks of ``size`` bytes (all of them without one)."""
    match = re.match(r"bytes=(\d+)-(\d*)", header or "")
    start = int(match.group(1)) if match else 0
    stop = min(size, int(match.group(2)) + 1) if match and match.group(2) else size
    return start, stop


def tls_context(tls: tuple[str, str]) -> ssl.SSLContext:
    """A server context for a (certificate, key) pair of files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls)
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], recorder: Recorder, family: int,
                 tls: ssl.SSLContext | None) -> None:
        self.address_family = family
        self.recorder = recorder
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        """Count the connection as TCP accepts it, then (for TLS) shake hands."""
        connection, address = self.socket.accept()
        with self.recorder.lock:
            self.recorder.connections += 1
        if self.tls is not None:
            connection = self.tls.wrap_socket(connection, server_side=True)
        return connection, address


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        rig = self.server.recorder
        with rig.lock:
            rig.requests.append((self.headers.get("Host", ""), self.path))
        name = self.path.split("?", 1)[0].lstrip("/")
        if rig.redirect is not None:
            self.send_response(302)
            self.send_header("Location", rig.redirect + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if name not in rig.files:
            self.send_error(404)
            return
        data = rig.files[name].read_bytes()
        start, stop = byte_range(self.headers.get("Range"), len(data))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        self.wfile.write(data[start:stop])
        with rig.lock:
            rig.served += stop - start

    def log_message(self, format: str, *args: object) -> None:
        pass


class Recorder:
    """Serves ``files`` (URL path -> file) or redirects every request to ``redirect`` + path; over TLS when
    given a (certificate, key) pair. ``port`` is its 127.0.0.1 port, ``port6`` its ::1 port (``ipv6``)."""

    def __init__(self, files: dict[str, Path] | None = None, *, redirect: str | None = None,
                 tls: tuple[str, str] | None = None, ipv6: bool = False) -> None:
        self.files = files or {}
        self.redirect = redirect
        self.lock = threading.Lock()
        self.connections = 0
        self.served = 0
        self.requests: list[tuple[str, str]] = []
        context = tls_context(tls) if tls else None
        self._servers = [_Server(("127.0.0.1", 0), self, socket.AF_INET, context)]
        if ipv6:
            self._servers.append(_Server(("::1", 0), self, socket.AF_INET6, context))
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.port = self._servers[0].server_address[1]
        self.port6 = self._servers[-1].server_address[1] if ipv6 else None

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
