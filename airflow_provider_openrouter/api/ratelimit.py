"""Per-key request pacing inside one process, shared by every hook, client and trigger.

Pacing never sleeps while the key is under its limit: :meth:`RateLimiter.reserve` books the next
free slot and returns how long to wait for it (0.0 when a slot is free now). The caller sleeps
(``time.sleep`` or ``asyncio.sleep``), so one limiter serves sync and async code alike.
Other processes sharing the key are not visible here; they are paced by the API's own 429s,
which :mod:`airflow_provider_openrouter.api.client` treats as shared back-pressure.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable

PERIOD_SECONDS = 60.0


class RateLimiter:
    """At most ``requests_per_minute`` requests in any sliding ``period`` seconds."""

    def __init__(
        self,
        requests_per_minute: int,
        *,
        period: float = PERIOD_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        self.requests_per_minute = requests_per_minute
        self.period = period
        self._clock = clock
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the earliest free slot; return the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            while self._slots and self._slots[0] <= now - self.period:
                self._slots.popleft()
            if len(self._slots) < self.requests_per_minute:
                slot = now
            else:
                slot = max(now, self._slots[-self.requests_per_minute] + self.period)
            self._slots.append(slot)
            return slot - now


_registry: dict[tuple[str, int], RateLimiter] = {}
_registry_lock = threading.Lock()


def key_fingerprint(api_key: str) -> str:
    """A short, one-way name for a key, safe to log and to use as a dictionary key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def limiter_for(api_key: str, requests_per_minute: int) -> RateLimiter:
    """The process-wide limiter of one key (keyed by its fingerprint, never the key)."""
    name = (key_fingerprint(api_key), requests_per_minute)
    with _registry_lock:
        limiter = _registry.get(name)
        if limiter is None:
            limiter = _registry[name] = RateLimiter(requests_per_minute)
        return limiter
