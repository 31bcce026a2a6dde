"""``https://`` input: a presigned S3 URL read with HTTP Range over real TLS; what a plain server does."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from streamup.errors import InputError, OutputError
from streamup.storage import open_sink, open_source
from tests.conftest import MEDIA, media
from tests.storage.conftest import S3, Presigner
from tests.storage.recorder import Recorder
from tests.storage.test_s3 import demux


@pytest.mark.parametrize("name", ["faststart.mp4", "moov_at_end.mp4"])
def test_presigned_https_input_demuxes_with_ranged_reads(s3: S3, presign: Presigner, name: str) -> None:
    path = media(name)
    s3.put(name, path)
    url = presign(name)
    assert url.startswith("https://127.0.0.1:") and "X-Amz-Signature=" in url
    with open_source(url) as source:
        assert source.name == url.split("?")[0], "the signature must not appear in names and messages"
        assert source.size == path.stat().st_size
        packets = demux(source.file)
    assert packets == demux(str(path))
    ratio = presign.counter.served(name) / path.stat().st_size
    assert ratio <= 1.5, f"{name}: served {ratio:.3f}x over https"


def test_missing_object_fails_fast_and_https_is_not_an_output(s3: S3, presign: Presigner) -> None:
    start = time.monotonic()
    with pytest.raises(InputError, match=r"^input not found: https://127\.0\.0\.1:\d+/.*/nope\.mp4$"):
        open_source(presign("nope.mp4"))
    assert time.monotonic() - start < 5
    with pytest.raises(OutputError, match="cannot write to https:// URLs"):
        open_sink(presign("out.mp4"))


class _Plain(http.server.SimpleHTTPRequestHandler):
    """Python's file server, which ignores Range; ``/forbidden`` answers 403 like an expired presigned URL."""

    def do_GET(self) -> None:
        if self.path.startswith("/forbidden"):
            self.send_error(403)
        else:
            super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[str]:
    handler = functools.partial(_Plain, directory=str(MEDIA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_a_server_without_range_support_is_refused_not_downloaded(plain_server: str) -> None:
    """Streaming the whole file for every seek is what the ranged reader exists to avoid."""
    with pytest.raises(InputError, match="ignores HTTP Range requests"):
        open_source(f"{plain_server}/faststart.mp4")


def test_denied_url_says_so_without_its_signature(plain_server: str) -> None:
    with pytest.raises(InputError, match=r"access denied \(an expired or wrongly signed URL\?\)$") as info:
        open_source(f"{plain_server}/forbidden/in.mp4?X-Amz-Signature=secret")
    assert "secret" not in str(info.value)


def test_a_redirect_is_refused_and_never_followed() -> None:
    """A redirect could lead anywhere (instance metadata, an internal service) past the worker's host check:
    the client says so and the place it points to gets no request."""
    target = Recorder({"in.mp4": MEDIA / "faststart.mp4"})
    redirecting = Recorder(redirect=f"http://127.0.0.1:{target.port}")
    try:
        with pytest.raises(InputError, match=r"redirects \(HTTP 302\), and redirects are not followed$"):
            open_source(f"http://127.0.0.1:{redirecting.port}/in.mp4?X-Amz-Signature=secret")
        assert [path for _, path in redirecting.requests] == ["/in.mp4?X-Amz-Signature=secret"]
        assert (target.connections, target.requests) == (0, [])
    finally:
        redirecting.close()
        target.close()
