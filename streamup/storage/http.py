"""``https://`` (and ``http://``) input, typically a presigned S3 URL: the same ranged reader over HTTP Range.

urllib3 is botocore's own HTTP client, so this adds no dependency. The URL's query string (a presigned URL's
signature) never appears in messages or output metadata: the source is named by scheme, host and path only.
A server that ignores ``Range`` is refused rather than streamed in full: the demuxer must be able to seek.

Redirects are never followed: a 3xx is an ``InputError`` saying so. The worker checks a job's host and every
address it resolves to before anything is fetched (``streamup.worker.admission``); a redirect would lead
past that check to any address, instance metadata included. What remains open: urllib3 resolves the host
again when it connects, so a DNS answer that changes between the check and the connection (DNS rebinding)
is not caught here; pinning the checked address would mean connecting by IP with the name kept for TLS,
which this transport does not do. ``http://`` stays readable for ``streamup upscale`` (a local user's own
server); the worker's job contract accepts ``https://`` only.
"""

from __future__ import annotations

import re

import urllib3

from streamup.errors import InputError
from streamup.storage.base import Source
from streamup.storage.ranged import RangedReader

_RETRIES = urllib3.Retry(total=5, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                         allowed_methods=frozenset({"GET"}), raise_on_status=False)
_TIMEOUT = urllib3.Timeout(connect=10, read=60)
_CONTENT_RANGE = re.compile(r"bytes (?:\d+-\d+|\*)/(\d+)")
TRANSIENT_READ_ERRORS = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError)


def public_name(url: str) -> str:
    """The URL without its query string: safe to print and to store in metadata."""
    return url.split("?", 1)[0]


def _status_reason(status: int) -> str:
    if 300 <= status < 400:
        return f"the server redirects (HTTP {status}), and redirects are not followed"
    if status == 404:
        return "not found"
    if status in (401, 403):
        return "access denied (an expired or wrongly signed URL?)"
    return f"HTTP {status}"


def open_source(url: str) -> Source:
    name = public_name(url)
    pool = urllib3.PoolManager(retries=_RETRIES, timeout=_TIMEOUT)

    def get(start: int, stop: int) -> urllib3.BaseHTTPResponse:
        try:
            return pool.request("GET", url, headers={"Range": f"bytes={start}-{stop - 1}"}, redirect=False)
        except urllib3.exceptions.MaxRetryError as e:
            raise InputError(f"cannot read input {name}: {e.reason}") from None

    # One byte answers everything before the heavy work starts: does it exist, may we read it, how big is
    # it, and does the server honour Range at all.
    probe = get(0, 1)
    match = _CONTENT_RANGE.match(probe.headers.get("Content-Range", ""))
    if probe.status == 416:  # an empty object has no byte 0
        size = int(match.group(1)) if match else 0
    elif probe.status == 206:
        if not match:
            raise InputError(f"cannot read input {name}: server sent no object size (Content-Range)")
        size = int(match.group(1))
    elif probe.status == 200:
        raise InputError(f"cannot read input {name}: the server ignores HTTP Range requests, so the video "
                         "cannot be streamed; download it first")
    elif probe.status == 404:
        raise InputError(f"input not found: {name}")
    else:
        raise InputError(f"cannot read input {name}: {_status_reason(probe.status)}")

    def fetch(start: int, stop: int) -> bytes:
        response = get(start, stop)
        if response.status != 206:
            raise InputError(f"cannot read input {name}: {_status_reason(response.status)}")
        return response.data

    reader = RangedReader(fetch, size, name, transient=TRANSIENT_READ_ERRORS)
    reader.bytes_fetched, reader.requests = len(probe.data), 1
    return Source(reader, name, size)
