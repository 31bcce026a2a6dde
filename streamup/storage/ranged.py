"""A seekable reader over any store that can serve a byte range: S3 GetObject, HTTP Range.

Why not one long streaming GET (or smart_open's reader): FFmpeg seeks. An mp4 with its ``moov`` at the end
makes the demuxer read the header at 0, jump to the end for the index, and come back to the first sample; a
reader that answers each seek with a new open-ended GET makes the server send the rest of the object every
time, and even bounded ranges get refetched when the demuxer comes back to bytes it already had. Here every
GET names an exact range (``bytes=a-b``), every fetched range is kept in a small LRU cache, and the next
range starts where the request starts and stops at the next cached byte, so no byte is fetched twice while
it is cached. The range grows (doubling up to ``max_block``) while reads continue where the last fetch
ended, so a long sequential read costs few requests, and restarts small after a jump, so a seek wastes at
most one small block.

Memory is bounded by ``cache_bytes`` (plus one block in flight), whatever the object size.
"""

from __future__ import annotations

import io
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from streamup.errors import InputError

log = logging.getLogger(__name__)

MIN_BLOCK = 64 * 1024
MAX_BLOCK = 4 * 1024 * 1024
CACHE_BYTES = 16 * 1024 * 1024

#: fetch(start, stop) returns the bytes [start, stop) of the object (stop exclusive, within the object size).
Fetch = Callable[[int, int], bytes]


class _Block:
    __slots__ = ("data", "next_size", "start")

    def __init__(self, start: int, data: bytes, next_size: int) -> None:
        self.start = start
        self.data = data
        self.next_size = next_size

    @property
    def stop(self) -> int:
        return self.start + len(self.data)


class RangedReader(io.RawIOBase):
    """A read-only, seekable file over ``fetch``; ``bytes_fetched``/``requests`` say what it cost.

    ``transient`` lists the exception types worth retrying when a response body breaks mid-read (the
    request itself is retried by the client library; a body that dies halfway is not).
    """

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        name: str,
        *,
        transient: tuple[type[BaseException], ...] = (),
        min_block: int = MIN_BLOCK,
        max_block: int = MAX_BLOCK,
        cache_bytes: int = CACHE_BYTES,
        attempts: int = 4,
    ) -> None:
        super().__init__()
        if not 0 < min_block <= max_block <= cache_bytes:
            raise ValueError("need 0 < min_block <= max_block <= cache_bytes")
        self._fetch = fetch
        self.size = size
        self.name = name
        self._transient = transient
        self._min_block = min_block
        self._max_block = max_block
        self._cache_bytes = cache_bytes
        self._attempts = attempts
        self._blocks: OrderedDict[int, _Block] = OrderedDict()  # start -> block, least recently used first
        self._cached = 0
        self._pos = 0
        self.bytes_fetched = 0
        self.requests = 0

    # io.RawIOBase -------------------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence: {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos  # seeking is free: nothing is fetched until a read needs it
        return pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(out) and self._pos < self.size:
            block = self._block_at(self._pos)
            offset = self._pos - block.start
            n = min(len(out) - filled, len(block.data) - offset)
            out[filled : filled + n] = block.data[offset : offset + n]
            filled += n
            self._pos += n
        return filled

    def close(self) -> None:
        self._blocks.clear()
        self._cached = 0
        super().close()

    # cache --------------------------------------------------------------------------------------------

    def _block_at(self, pos: int) -> _Block:
        for block in reversed(self._blocks.values()):  # most recent first: sequential reads hit at once
            if block.start <= pos < block.stop:
                self._blocks.move_to_end(block.start)
                return block
        return self._load(pos)

    def _load(self, pos: int) -> _Block:
        size = self._min_block
        for block in self._blocks.values():
            # A read that starts where a cached block ends continues a sequential stream: inherit its grown
            # size. Any gap means the reader skipped data (a fragmented mp4's moof-to-moof walk skips each
            # mdat): growing there would fetch the very bytes being skipped.
            if block.stop == pos:
                size = max(size, block.next_size)
        stop = min(pos + size, self.size)
        for block in self._blocks.values():
            if pos < block.start < stop:
                stop = block.start  # never fetch bytes we already hold
        data = self._fetch_with_retry(pos, stop)
        if not data:
            raise OSError(f"{self.name}: empty response for bytes {pos}-{stop - 1}")
        block = _Block(pos, data, min(size * 2, self._max_block))
        self._blocks[pos] = block
        self._cached += len(data)
        while self._cached > self._cache_bytes and len(self._blocks) > 1:
            _, old = self._blocks.popitem(last=False)
            self._cached -= len(old.data)
        return block

    def _fetch_with_retry(self, start: int, stop: int) -> bytes:
        attempt = 1
        while True:
            try:
                data = self._fetch(start, stop)
                break
            except self._transient as e:
                if attempt >= self._attempts:
                    raise InputError(f"cannot read input {self.name}: {e or type(e).__name__}") from None
                log.warning("%s: bytes %d-%d: %s; retrying (%d/%d)", self.name, start, stop - 1, e,
                            attempt, self._attempts - 1)
                time.sleep(0.5 * 2 ** (attempt - 1))
                attempt += 1
        self.requests += 1
        self.bytes_fetched += len(data)
        return data
