"""retry and ratelimit: the pure policy pieces."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from airflow_provider_openrouter.api.ratelimit import RateLimiter, key_fingerprint, limiter_for
from airflow_provider_openrouter.api.retry import (
    RetryPolicy,
    is_daily_quota_message,
    is_retryable_status,
    next_utc_midnight,
    parse_retry_after,
)

NOW = datetime(2026, 5, 12, 20, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "header,expected",
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Tue, 12 May 2026 20:00:30 GMT", 30.0),
        ("Tue, 12 May 2026 19:00:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("1.5", None),
    ],
)
def test_retry_after_forms(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_backoff_doubles_is_capped_and_never_below_base() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    jittered = RetryPolicy(backoff_base=1.0, backoff_max=8.0, jitter=0.5)
    rng = random.Random(1)
    values = [jittered.backoff(3, rng) for _ in range(200)]
    assert min(values) >= 4.0 and max(values) <= 6.0 and len(set(values)) > 100


def test_retry_after_waits_are_never_early_and_spread_out() -> None:
    policy = RetryPolicy(jitter=0.2)
    rng = random.Random(7)
    short = [policy.after_retry_after(1.0, rng) for _ in range(200)]
    assert min(short) >= 1.0 and max(short) <= 1.2 + 1e-9 and max(short) - min(short) > 0.15
    long = [policy.after_retry_after(50.0, rng) for _ in range(200)]
    assert min(long) >= 50.0 and max(long) <= 60.0 and max(long) - min(long) > 5


def test_classification() -> None:
    assert all(is_retryable_status(s) for s in (500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 408, 422, 429))
    assert is_daily_quota_message("Daily request limit exceeded: 500 requests per day")
    assert not is_daily_quota_message("Rate limit exceeded: 30 requests per minute")
    assert next_utc_midnight(NOW) == datetime(2026, 5, 13, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_never_waits_under_the_limit_and_books_slots_over_it() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve() == 60.0  # the 4th waits for the 1st to leave the window
    assert limiter.reserve() == 60.0
    clock.now += 30
    assert limiter.reserve() == 30.0  # slot of the 3rd request + 60 s
    assert limiter.reserve() == 90.0  # after the booked 4th
    clock.now += 200
    assert limiter.reserve() == 0.0


def test_limiter_spaces_any_window_to_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock)
    slots = []
    for _ in range(23):
        slots.append(clock.now + limiter.reserve())
        clock.now += 1.0
    slots.sort()
    for i in range(len(slots) - 5):
        assert slots[i + 5] - slots[i] >= 60.0


def test_limiter_registry_is_per_key_and_never_keeps_the_key() -> None:
    a = limiter_for("sk-or-aaaaaaaaaaaa", 30)
    assert limiter_for("sk-or-aaaaaaaaaaaa", 30) is a
    assert limiter_for("sk-or-bbbbbbbbbbbb", 30) is not a
    from airflow_provider_openrouter.api import ratelimit

    assert all("sk-or" not in name for name, _ in ratelimit._registry)
    assert len(key_fingerprint("sk-or-aaaaaaaaaaaa")) == 12


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
