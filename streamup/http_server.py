"""The small HTTP endpoint a long-running face exposes: ``/healthz``, ``/readyz``, ``/metrics``.

One server per process, whatever shares it: the worker registers its health checks and the metrics module
its exposition as routes, without either importing the other. A route is a callable returning
``(status, content_type, body)``, evaluated per request on the server's own daemon thread, so a slow or
stuck job never delays a probe. The standard library's threading server is enough for a handful of probes
and scrapes a minute, and adds no dependency.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("streamup")

Route = Callable[[], tuple[int, str, bytes]]


class HttpServer:
    """A running endpoint; ``port`` is the bound one (ask for 0 to get a free port)."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        self.routes = dict(routes)
        server_routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = server_routes.get(self.path.split("?", 1)[0])
                if route is None:
                    status, ctype, body = 404, "text/plain; charset=utf-8", b"not found\n"
                else:
                    try:
                        status, ctype, body = route()
                    except Exception as e:  # a broken check is a failed probe, not a dead server
                        status, ctype, body = 500, "text/plain; charset=utf-8", f"{e}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="streamup-http", daemon=True)
        self._thread.start()

    def add_route(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def serve(host: str, port: int, routes: Mapping[str, Route] | None = None) -> HttpServer:
    """Start serving ``routes`` on ``host:port`` in the background."""
    return HttpServer(host, port, routes or {})


def text(status: int, body: str) -> tuple[int, str, bytes]:
    """A plain-text answer, for health routes."""
    return status, "text/plain; charset=utf-8", (body.rstrip("\n") + "\n").encode()
