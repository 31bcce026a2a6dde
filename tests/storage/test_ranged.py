"""The ranged reader on its own: same bytes as the file for any access pattern, and no byte fetched twice."""

from __future__ import annotations

import io
import itertools
import random

import pytest

from streamup.errors import InputError
from streamup.storage.ranged import RangedReader
from tests.conftest import media


def reader_over(data: bytes, **kwargs: int) -> tuple[RangedReader, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def fetch(start: int, stop: int) -> bytes:
        assert 0 <= start < stop <= len(data), (start, stop)
        calls.append((start, stop))
        return data[start:stop]

    return RangedReader(fetch, len(data), "mem", **kwargs), calls


def test_random_seeks_read_the_file_exactly() -> None:
    data = media("moov_at_end.mp4").read_bytes()
    reader, _ = reader_over(data, min_block=4096, max_block=65536, cache_bytes=131072)
    local = io.BytesIO(data)
    rng = random.Random(4)
    for _ in range(2000):
        whence = rng.choice([io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
        offset = {io.SEEK_SET: rng.randrange(len(data) + 100), io.SEEK_CUR: rng.randrange(-5000, 5000),
                  io.SEEK_END: -rng.randrange(len(data))}[whence]
        if whence == io.SEEK_CUR and local.tell() + offset < 0:
            offset = -local.tell()
        assert reader.seek(offset, whence) == local.seek(offset, whence)
        n = rng.choice([1, 7, 2048, 32768, 200000])
        assert reader.read(n) == local.read(n)
        assert reader.tell() == local.tell()


def test_read_at_and_past_end() -> None:
    reader, calls = reader_over(b"0123456789")
    assert reader.read() == b"0123456789"
    assert reader.read(5) == b""
    reader.seek(100)
    assert reader.read(5) == b""
    assert len(calls) == 1
    with pytest.raises(ValueError):
        reader.seek(-1)


def test_jump_to_end_and_back_fetches_each_byte_once() -> None:
    """The moov-at-end pattern: header at 0, index at the end, then the whole body in order."""
    data = bytes(range(256)) * 4096  # 1 MiB
    reader, calls = reader_over(data, min_block=65536)
    assert reader.read(48) == data[:48]
    reader.seek(-20000, io.SEEK_END)
    assert reader.read() == data[-20000:]
    reader.seek(48)
    assert reader.read() == data[48:]
    assert reader.bytes_fetched == len(data)
    fetched = sorted(calls)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(fetched)), "overlapping ranges"


def test_sequential_reads_grow_the_range_and_a_jump_resets_it() -> None:
    data = bytes(8 * 1024 * 1024)
    reader, calls = reader_over(data, min_block=65536, max_block=1048576, cache_bytes=4194304)
    while reader.read(32768):
        pass
    sizes = [stop - start for start, stop in calls]
    assert sizes[:5] == [65536, 131072, 262144, 524288, 1048576]
    assert set(sizes[5:-1]) == {1048576}
    assert sum(sizes) == len(data)
    reader.seek(12345)  # evicted long ago: a jump starts small again
    reader.read(10)
    assert calls[-1] == (12345, 12345 + 65536)


def test_memory_is_bounded_by_the_cache() -> None:
    data = bytes(8 * 1024 * 1024)
    reader, _ = reader_over(data, min_block=65536, max_block=1048576, cache_bytes=2097152)
    while reader.read(65536):
        assert sum(len(b.data) for b in reader._blocks.values()) <= 2097152 + 1048576


def test_a_broken_body_is_retried() -> None:
    data = bytes(range(256)) * 100
    failures = [ConnectionResetError("reset by peer")]

    def fetch(start: int, stop: int) -> bytes:
        if failures:
            raise failures.pop()
        return data[start:stop]

    reader = RangedReader(fetch, len(data), "flaky", transient=(ConnectionError,))
    assert reader.read() == data
    assert reader.requests == 1


def test_a_body_that_keeps_breaking_is_an_input_error() -> None:
    def fetch(start: int, stop: int) -> bytes:
        raise ConnectionResetError("reset by peer")

    reader = RangedReader(fetch, 100, "s3://b/in.mp4", transient=(ConnectionError,), attempts=2)
    with pytest.raises(InputError, match=r"^cannot read input s3://b/in\.mp4: reset by peer$"):
        reader.read(10)


def test_skipping_forward_does_not_grow_the_range() -> None:
    """A fragmented mp4's moof-to-moof walk: read a little, skip the mdat, read a little. Growing the range
    across the gaps would fetch the skipped mdats; each small read must cost one small range."""
    data = bytes(4 * 1024 * 1024)
    reader, calls = reader_over(data, min_block=16384)
    for pos in range(0, len(data), 20_000):  # gaps smaller than a block: still skips, not a stream
        reader.seek(pos)
        reader.read(1500)
    assert {stop - start for start, stop in calls[:-1]} == {16384}
    assert reader.bytes_fetched <= len(calls) * 16384
