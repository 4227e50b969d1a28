"""Fixtures of the as_of trigger tests (the sensor tests build on them): an emulator and an Airflow connection to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.testing import Emulator
from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger

KEY = "sk-or-emulator"
PROBE_PATH = "/datasets/rankings-daily"


@dataclass
class Api:
    """A started emulator and the id of a fresh Airflow connection to it."""

    emulator: Emulator
    conn_id: str

    def probe_times(self) -> list[datetime]:
        """When each probe reached the emulator (by the emulator's clock, real time unless frozen)."""
        return [
            datetime.fromisoformat(r["time"])
            for r in self.emulator.requests
            if r["path"].endswith(PROBE_PATH)
        ]

    def probes(self) -> int:
        return self.emulator.request_count(PROBE_PATH)


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


@pytest.fixture
def api_factory(
    openrouter_emulator_factory: Callable[..., Emulator], openrouter_conn: Callable[..., str]
) -> Callable[..., Api]:
    """Make an emulator (real clock, no limits unless given) plus a connection to it.

    The connection id is unique to the call, so the as_of memory (one Variable per connection)
    of other tests cannot leak in.
    """

    def make(key: str = KEY, **kwargs: Any) -> Api:
        kwargs.setdefault("rpm", None)
        kwargs.setdefault("daily_limit", None)
        emulator = openrouter_emulator_factory(**kwargs)
        return Api(
            emulator,
            openrouter_conn(emulator, conn_id=f"openrouter_{uuid.uuid4().hex[:10]}", key=key),
        )

    return make


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """An emulator that follows real time with no ingest lag: yesterday (UTC) is complete."""
    return api_factory()


def run_trigger(trigger: OpenRouterAsOfTrigger, limit: float = 60.0) -> dict[str, Any]:
    """Run a trigger to its first event (as the triggerer would) and return the event's payload."""

    async def first_event() -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(asyncio.wait_for(first_event(), limit))
    return event.payload


def settle_to(moment: datetime, day: date) -> timedelta:
    """The ``settle`` that makes ``day`` complete exactly at ``moment``."""
    return moment - datetime.combine(
        day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc
    )


def next_whole_second(after: timedelta = timedelta(seconds=2)) -> datetime:
    """A whole-second instant ``after`` from now (the emulator's as_of has whole seconds)."""
    return (datetime.now(timezone.utc) + after).replace(microsecond=0)
