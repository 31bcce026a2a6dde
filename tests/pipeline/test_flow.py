"""The pipeline's plumbing: channels bounded by items and bytes, the stop flag, busy clocks, byte counts."""

from __future__ import annotations

import io
import threading
import time

import pytest

from streamup.pipeline.flow import BusyClock, Channel, Counted, Halt, StopFlag, Turns


def _put_later(channel: Channel, item: object, size: int) -> threading.Thread:
    t = threading.Thread(target=channel.put, args=(item, size), daemon=True)
    t.start()
    return t


def test_a_channel_holds_back_a_put_that_would_pass_its_byte_budget() -> None:
    channel = Channel("q", max_items=10, max_bytes=100, stop=StopFlag(None))
    channel.put("a", 60)
    blocked = _put_later(channel, "b", 60)
    blocked.join(0.3)
    assert blocked.is_alive(), "60 + 60 bytes exceed the 100-byte budget"
    assert channel.fill == pytest.approx(0.6)
    assert channel.get() == "a"
    blocked.join(2)
    assert not blocked.is_alive() and channel.get() == "b"


def test_one_item_larger_than_the_budget_still_passes_alone() -> None:
    channel = Channel("q", max_items=4, max_bytes=10, stop=StopFlag(None))
    channel.put("huge", 1000)
    assert channel.fill == pytest.approx(100.0)  # far over budget: nothing else gets in
    blocked = _put_later(channel, "small", 1)
    blocked.join(0.3)
    assert blocked.is_alive()
    assert channel.get() == "huge"
    blocked.join(2)
    assert channel.get() == "small"


def test_a_channel_is_bounded_by_items_too() -> None:
    channel = Channel("q", max_items=2, max_bytes=10**9, stop=StopFlag(None))
    channel.put(1)
    channel.put(2)
    assert channel.fill == 1.0
    blocked = _put_later(channel, 3, 0)
    blocked.join(0.3)
    assert blocked.is_alive()
    assert [channel.get(), channel.get()] == [1, 2]
    blocked.join(2)
    assert channel.get() == 3


def test_a_blocked_stage_halts_when_another_fails_or_the_run_is_cancelled() -> None:
    cancel = threading.Event()
    stop = StopFlag(cancel)
    channel = Channel("q", max_items=1, max_bytes=100, stop=stop)
    t0 = time.perf_counter()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(Halt):
        channel.get()  # nothing will ever come: only the cancel ends the wait
    assert time.perf_counter() - t0 < 2
    assert stop.cancelled


def test_the_first_error_wins_and_halts_are_quiet() -> None:
    stop = StopFlag(None)

    def fail(message: str) -> None:
        raise RuntimeError(message)

    def halted() -> None:
        raise Halt

    stop.guard(halted)
    assert stop.error is None
    stop.guard(lambda: fail("first"))
    stop.guard(lambda: fail("second"))
    assert str(stop.error) == "first"
    with pytest.raises(Halt):
        stop.check()


def test_busy_clock_adds_only_the_time_inside() -> None:
    clock = BusyClock(("decode", "encode"))
    with clock.busy("decode"):
        time.sleep(0.05)
    time.sleep(0.05)
    assert 0.04 < clock.seconds["decode"] < 0.09
    assert clock.seconds["encode"] == 0.0


def test_counted_counts_bytes_both_ways_and_passes_the_rest_through() -> None:
    reader = Counted(io.BytesIO(b"0123456789"))
    assert reader.read(4) == b"0123" and reader.seek(8) == 8 and reader.read() == b"89"
    assert reader.bytes == 6 and reader.tell() == 10
    writer = Counted(io.BytesIO())
    writer.write(b"abc")
    writer.write(memoryview(b"de"))
    writer.seek(1)
    writer.write(b"B")  # a header patched in place: the output is still 5 bytes
    assert writer.bytes == 5 and writer.getvalue() == b"aBcde"


def test_turns_let_concurrent_workers_finish_in_the_order_they_started() -> None:
    turns, finished = Turns(StopFlag(None)), []

    def worker(turn: int) -> None:
        time.sleep(0.05 * (3 - turn))  # the last to start is the first ready
        with turns.wait(turn):
            finished.append(turn)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert finished == [0, 1, 2, 3]


def test_a_worker_waiting_for_its_turn_halts_when_the_run_stops() -> None:
    stop = StopFlag(None)
    turns = Turns(stop)
    threading.Timer(0.2, stop.stop).start()
    t0 = time.perf_counter()
    with pytest.raises(Halt), turns.wait(1):  # turn 0 never comes
        pass
    assert 0.2 <= time.perf_counter() - t0 < 2.0


def test_busy_clock_adds_up_threads_working_at_once() -> None:
    clock = BusyClock(("upscale",))

    def lane() -> None:
        for _ in range(20):
            with clock.busy("upscale"):
                time.sleep(0.005)

    threads = [threading.Thread(target=lane) for _ in range(3)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    assert clock.seconds["upscale"] >= 3 * 20 * 0.005
    assert clock.seconds["upscale"] > 1.5 * wall  # busy seconds of lanes overlap in wall time
