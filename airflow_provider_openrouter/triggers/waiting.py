"""Clock helpers shared by the triggers: aware UTC instants and sleeping until an absolute moment."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from airflow_provider_openrouter.runtime import probe

#: Longest single sleep, so a trigger notices cancellation and clock changes at least once a minute.
SLEEP_STEP = 60.0


def aware(value: datetime | str, name: str) -> datetime:
    """``value`` (a datetime or an ISO string) as an aware UTC datetime; naive values are refused."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"{name} {moment.isoformat()} has no timezone.")
    return moment.astimezone(timezone.utc)


async def sleep_until(moment: datetime) -> None:
    """Sleep until ``moment`` by the trigger's clock, in steps of at most :data:`SLEEP_STEP`."""
    while (remaining := (moment - probe.utcnow()).total_seconds()) > 0:
        await asyncio.sleep(min(remaining, SLEEP_STEP))
