"""The shared request budget's slot booking: one winner per slot under real concurrency, any window
within the limit, slow stores and foreign values handled."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from airflow_provider_openrouter.api.budget import SharedBudget


class SlowStore:
    """A dict behind a lock with random latency per operation (last writer wins), counting writes."""

    def __init__(self, latency: float = 0.0, seed: int = 0) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()
        self.latency = latency
        self.rng = random.Random(seed)

    def _pause(self) -> None:
        if self.latency:
            with self.lock:
                pause = self.rng.uniform(0, self.latency)
            time.sleep(pause)

    def read(self, name: str) -> str | None:
        self._pause()
        with self.lock:
            return self.values.get(name)

    def write(self, name: str, value: str) -> None:
        self._pause()
        with self.lock:
            self.values[name] = value
        self._pause()


def test_concurrent_bookers_win_distinct_slots_and_respect_the_limit() -> None:
    """12 threads (each its own SharedBudget, as separate processes would be) book 5 slots each on a
    store with jittery latency: no slot is won twice."""
    store = SlowStore(latency=0.02, seed=7)
    rpm = 600  # 0.11 s slots: the test runs in seconds, the rules are the same as at 30/minute
    won: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        budget = SharedBudget(store, "k", rpm, settle=0.1)
        for _ in range(5):
            slot = budget.book()
            with lock:
                won.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(won) == 60
    assert Counter(won).most_common(1)[0][1] == 1, "a slot was won twice"
    # one request per slot, slots 10% wider than period/rpm: any period holds fewer than rpm requests
    budget = SharedBudget(store, "k", rpm)
    starts = sorted(slot * budget.width for slot in won)
    period = 60.0
    assert all(sum(1 for u in starts if t <= u < t + period) <= rpm for t in starts)


def test_a_slow_write_gives_the_slot_up() -> None:
    """A write that took longer than settle/2 cannot prove it was alone: the slot is skipped."""
    now = [1000.0]
    mono = [0.0]
    store = SlowStore()
    original_write = store.write

    def slow_write(name: str, value: str) -> None:
        if not getattr(slow_write, "done", False):
            slow_write.done = True  # type: ignore[attr-defined]
            mono[0] += 5.0  # the first write stalls for 5 s
        original_write(name, value)

    store.write = slow_write  # type: ignore[method-assign]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        mono[0] += seconds

    budget = SharedBudget(
        store, "k", 30, clock=lambda: now[0], monotonic=lambda: mono[0], sleep=sleep
    )
    slot = budget.book()
    assert budget.slow_writes == 1 and budget.writes == 2
    first = store.values[budget.entry(slot - 1)]
    assert first.startswith(f"{slot - 1}:"), "the given-up slot stays marked (it is never used)"


def test_taken_slots_and_foreign_values() -> None:
    """An entry naming the slot (or a later lap) is taken; a value this module did not write is overwritten."""
    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    store = SlowStore()
    budget = SharedBudget(store, "k", 30, clock=lambda: now[0], monotonic=lambda: 0.0, sleep=sleep)
    first = int((now[0] + budget.settle * 1.5) // budget.width) + 1
    store.values[budget.entry(first)] = f"{first}:someone"
    store.values[budget.entry(first + 1)] = f"{first + 1 + budget.ring}:a later lap"
    store.values[budget.entry(first + 2)] = "not a booking"
    assert budget.book() == first + 2
    wait_until = now[0]
    assert budget.reserve() >= 0.0 and now[0] >= wait_until


def test_it_never_books_further_ahead_than_half_the_ring() -> None:
    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    store = SlowStore()
    budget = SharedBudget(store, "k", 30, clock=lambda: now[0], monotonic=lambda: 0.0, sleep=sleep)
    for _ in range(budget.ring):
        slot = budget.book()
        assert slot * budget.width - now[0] <= budget.max_ahead + budget.width


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        SharedBudget(SlowStore(), "k", 0)
    with pytest.raises(ValueError, match="settle"):
        SharedBudget(SlowStore(), "k", 30, settle=0)
