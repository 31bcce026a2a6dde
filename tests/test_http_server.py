"""The shared health/metrics endpoint: routes answer, unknown paths are 404, a broken check is a 500."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from streamup.http_server import serve, text


def _get(port: int, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_routes_answer_on_a_free_loopback_port_until_closed() -> None:
    ready = {"value": False}
    server = serve("127.0.0.1", 0, {"/healthz": lambda: text(200, "ok")})
    server.add_route("/readyz", lambda: text(200, "ready") if ready["value"] else text(503, "not ready"))
    try:
        assert server.port > 0
        assert _get(server.port, "/healthz") == (200, "text/plain; charset=utf-8", b"ok\n")
        assert _get(server.port, "/readyz")[:1] == (503,)
        ready["value"] = True
        assert _get(server.port, "/readyz?verbose=1")[0] == 200  # the query string is not part of the route
        assert _get(server.port, "/nope")[0] == 404
    finally:
        server.close()
    with pytest.raises(urllib.error.URLError):
        _get(server.port, "/healthz")


def test_a_route_that_raises_is_a_500_and_the_server_keeps_serving() -> None:
    def broken() -> tuple[int, str, bytes]:
        raise RuntimeError("queue unreachable")

    server = serve("127.0.0.1", 0, {"/readyz": broken, "/healthz": lambda: text(200, "ok")})
    try:
        status, _, body = _get(server.port, "/readyz")
        assert (status, body) == (500, b"queue unreachable\n")
        assert _get(server.port, "/healthz")[0] == 200
    finally:
        server.close()
