"""The one retry policy: which failures are retried, how long to wait, when to give up.

Pure and clock-free (the caller passes ``now``), so it is tested exhaustively and shared by the
sync hook and the async trigger through :mod:`airflow_provider_openrouter.api.client`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying one API call.

    :param max_attempts: attempts for 5xx answers, timeouts, dropped connections and unreadable
        bodies, the first one included.
    :param max_rate_limit_retries: 429 answers tolerated per call before :class:`RateLimitedError`
        (each one waits for ``Retry-After`` or a backoff first, so this never becomes a hot loop;
        processes sharing one key need several rounds when they contend for the per-minute limit).
    :param max_rate_limit_wait: seconds a call may spend in total waiting on 429s before
        :class:`RateLimitedError` (with ``retry_at``) hands the wait to the caller, e.g. a deferral.
    :param backoff_base: first exponential backoff in seconds (doubles each retry).
    :param backoff_max: longest single backoff in seconds.
    :param max_retry_after: a 429 that asks to wait longer than this (seconds) means the daily
        quota is spent: :class:`QuotaExhaustedError` is raised with the retry time instead of sleeping.
    :param deadline: absolute limit in seconds for the whole call, waits included.
    :param jitter: fraction of random spread added to each wait, so that processes sharing a key
        do not retry in lockstep.
    """

    max_attempts: int = 5
    max_rate_limit_retries: int = 8
    max_rate_limit_wait: float = 300.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0
    deadline: float = 900.0
    jitter: float = 0.2

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Exponential backoff with jitter for the ``attempt``-th retry (1-based)."""
        base = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempt - 1))
        return self.spread(base, rng)

    def spread(self, seconds: float, rng: random.Random | None = None) -> float:
        """``seconds`` plus up to ``jitter`` of it at random (never less than asked)."""
        return seconds * (1.0 + self.jitter * (rng or random).random())

    def after_retry_after(self, seconds: float, rng: random.Random | None = None) -> float:
        """The wait for a 429's ``Retry-After``: never earlier, plus a random spread of at least
        ``jitter`` seconds (or ``jitter`` of the wait), so waiters do not all return at once."""
        return seconds + max(self.jitter, self.jitter * seconds) * (rng or random).random()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(
        now.astimezone(timezone.utc).date() + timedelta(days=1), time(0), tzinfo=timezone.utc
    )


def is_daily_quota_message(message: str) -> bool:
    text = message.lower()
    return "per day" in text or "daily" in text or "per-day" in text


def is_retryable_status(status: int) -> bool:
    """5xx are transient; 429 has its own rules; every other 4xx is final (408 included: a query
    that timed out times out again unless it is made smaller, which only the caller can do)."""
    return status >= 500
