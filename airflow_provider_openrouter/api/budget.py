"""A request budget per API key shared by every process and machine: lock-free slot booking.

:class:`~airflow_provider_openrouter.api.ratelimit.RateLimiter` paces one process. Processes on other
workers sharing the key cannot see it, so without more they learn of each other only through the
API's 429s. :class:`SharedBudget` paces all of them through a store they all reach (an Airflow
Variable per slot, see :mod:`airflow_provider_openrouter.runtime.budget`), with no lock, no
atomic create and no compare-and-set: only *read*, *write* (last writer wins) and read-after-write
consistency.

Time is cut into slots of ``period / requests_per_minute * (1 + headroom)`` seconds (2.2 s at 30 a
minute), numbered from the Unix epoch, so every process agrees which slot is which (clocks synced by
NTP; the headroom absorbs small skews and late senders). A request is sent at the start of a slot
it *won*; one request per slot keeps any ``period`` within ``requests_per_minute`` requests, even
when a sender is up to ``headroom * period`` late. Slots live in a ring of ``ring`` store entries
(``slot % ring``), each holding ``"<slot>:<token>"``, so the store never grows.

Winning slot ``k`` (one process per slot, proven below):

1. read entry ``k % ring``; if it names slot ``k`` or a later one, the slot is taken: try ``k + 1``;
2. write ``"k:<token>"``; if reading and writing took longer than ``settle / 2`` the proof below
   does not hold: give the slot up (it stays unused) and try ``k + 1``;
3. sleep ``settle``, read the entry again: the slot is won iff it still holds this token.

Proof. Let A and B both read the entry empty in step 1 and write it. B's read saw no write of A, so
it happened before A's write completed; B's write completed within ``settle / 2`` of B's read
starting, hence before A's write completed plus ``settle / 2``, so before A's read-back in step 3.
The same holds with A and B swapped. So every such writer's read-back happens after all their
writes completed and sees the same last value: exactly one token wins (or none, if the last writer
gave up in step 2). A writer whose step 1 came after a write landed skips the slot.

A process that crashes after winning only wastes its slot: there is no lease to expire. The API's
429 stays the safety net (e.g. a caller that does not use the budget, such as the async trigger).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_HEADROOM = 0.1
DEFAULT_SETTLE = 1.0


class SlotStore(Protocol):
    """Where the slots live: any store with read-after-write consistency; last writer wins."""

    def read(self, name: str) -> str | None: ...

    def write(self, name: str, value: str) -> None: ...


class BudgetUnavailableError(RuntimeError):
    """The shared store cannot be used from here (e.g. outside an Airflow task): pace locally."""


class SharedBudget:
    """At most ``requests_per_minute`` requests of one key per ``period``, across processes.

    :param store: the shared :class:`SlotStore`.
    :param name: a name for this key's slots (its fingerprint, never the key).
    :param requests_per_minute: the limit per ``period`` the API enforces for the key.
    :param headroom: slots are this fraction wider than ``period / requests_per_minute``.
    :param settle: seconds between writing a booking and reading it back (see the module proof).
    :param ring: store entries per key (default ``2 * requests_per_minute + 8``).
    """

    def __init__(
        self,
        store: SlotStore,
        name: str,
        requests_per_minute: int,
        *,
        period: float = 60.0,
        headroom: float = DEFAULT_HEADROOM,
        settle: float = DEFAULT_SETTLE,
        ring: int | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be at least 1")
        if settle <= 0 or headroom < 0:
            raise ValueError("settle must be positive and headroom not negative")
        self.store = store
        self.name = name
        self.width = period / requests_per_minute * (1.0 + headroom)
        self.settle = settle
        self.ring = ring or 2 * requests_per_minute + 8
        # never book further ahead than half the ring: an entry of an earlier lap is then long past
        self.max_ahead = self.width * (self.ring // 2)
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._next = 0  # the earliest slot this process has not seen taken
        #: store operations and slots given up (for logs and tests)
        self.reads = self.writes = self.slow_writes = 0

    def entry(self, slot: int) -> str:
        return f"{self.name}__{slot % self.ring}"

    def _read_slot(self, name: str) -> tuple[int, str] | None:
        self.reads += 1
        raw = self.store.read(name)
        if not raw:
            return None
        number, _, token = str(raw).partition(":")
        try:
            return int(number), token
        except ValueError:
            return None  # not ours: overwrite it

    def book(self) -> int:
        """Win a slot (blocking for about ``settle`` seconds); return its number."""
        token = uuid.uuid4().hex
        earliest = math.ceil((self._clock() + self.settle * 1.5) / self.width)
        slot = max(earliest, self._next)
        while True:
            ahead = slot * self.width - self._clock()
            if ahead > self.max_ahead:  # the key is booked this far ahead: wait before booking more
                self._sleep(ahead - self.max_ahead)
                slot = max(slot, math.ceil((self._clock() + self.settle * 1.5) / self.width))
            elif ahead < self.settle:  # too close to prove in time: the slot is lost to us
                slot = math.ceil((self._clock() + self.settle * 1.5) / self.width)
                continue
            name = self.entry(slot)
            started = self._monotonic()
            current = self._read_slot(name)
            if current is not None and current[0] >= slot:
                slot += 1
                self._next = max(self._next, slot)
                continue
            self.writes += 1
            self.store.write(name, f"{slot}:{token}")
            if self._monotonic() - started > self.settle / 2:
                self.slow_writes += 1
                log.info(
                    "Shared request budget: the store answered slowly; giving up slot %d.", slot
                )
                slot += 1
                continue
            self._sleep(self.settle)
            current = self._read_slot(name)
            if current is not None and current == (slot, token):
                self._next = max(self._next, slot + 1)
                return slot
            slot += 1

    def reserve(self) -> float:
        """Book the next free slot of the key; return the seconds to wait until it starts."""
        slot = self.book()
        return max(0.0, slot * self.width - self._clock())
