"""The highest ``meta.as_of`` (and latest ``end_date``) seen per OpenRouter connection, in a Variable.

A day proven complete stays complete, so once any probe has seen ``as_of`` past a day's completion
instant, every later sensor for that day (or an earlier one) passes without a request. The memory
lives in the metadata DB (one Variable per connection), so it survives task processes, reschedules
and workers. It holds no secret: the ``as_of``, the ``end_date`` and the public base URL (no user
info, no query), so switching a connection to another API (e.g. from the emulator to the real one)
invalidates it.

Variable ``openrouter_as_of__<conn_id>``, JSON ``{"as_of": ISO-8601, "end_date": YYYY-MM-DD,
"base_url": URL}``. Delete it to forget (e.g. after OpenRouter announced a restatement).
The stored ``as_of`` and ``end_date`` are each the highest seen (days only ever become complete,
so they combine). Concurrent sensors may race on the read-then-write update; the only cost of a
lost update is one extra probe later.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from airflow_provider_openrouter.runtime import variables
from airflow_provider_openrouter.runtime.variables import public_base_url
from airflow_provider_openrouter.windows.intervals import day_complete_at

log = logging.getLogger(__name__)

VARIABLE_PREFIX = "openrouter_as_of__"


@dataclass(frozen=True)
class SeenAsOf:
    """An ``as_of`` the API answered for a connection, with the ``end_date`` it served then."""

    as_of: datetime
    end_date: date
    base_url: str

    def proves(self, target: date, settle: timedelta = timedelta(0)) -> bool:
        """Whether this answer already proved ``target`` complete."""
        return self.as_of >= day_complete_at(target, settle) and self.end_date >= target

    def to_json(self) -> dict[str, str]:
        return {
            "as_of": self.as_of.isoformat(),
            "end_date": self.end_date.isoformat(),
            "base_url": self.base_url,
        }

    @classmethod
    def from_json(cls, value: object) -> SeenAsOf | None:
        """Parse a stored value; ``None`` (forget it) if it is not what this module wrote."""
        if not isinstance(value, dict):
            return None
        try:
            as_of = datetime.fromisoformat(str(value["as_of"]))
            end_date = date.fromisoformat(str(value["end_date"]))
            base_url = str(value["base_url"])
        except (KeyError, ValueError):
            return None
        if as_of.tzinfo is None:
            return None
        return cls(as_of, end_date, base_url)


def variable_key(openrouter_conn_id: str) -> str:
    return VARIABLE_PREFIX + openrouter_conn_id


def recall(openrouter_conn_id: str, base_url: str) -> SeenAsOf | None:
    """The remembered ``as_of`` of this connection if it was seen on this same API."""
    return variables.recall_seen(variable_key(openrouter_conn_id), SeenAsOf.from_json, base_url)


def remember(openrouter_conn_id: str, seen: SeenAsOf) -> bool:
    """Store ``seen`` if it is newer than what is remembered; return whether it was stored."""
    seen = replace(seen, base_url=public_base_url(seen.base_url))
    current = recall(openrouter_conn_id, seen.base_url)
    if current is not None:
        # Days only ever become complete, so the newest as_of and the latest day served combine.
        seen = SeenAsOf(
            max(seen.as_of, current.as_of), max(seen.end_date, current.end_date), seen.base_url
        )
        if seen == current:
            return False
    return variables.write_json(
        variable_key(openrouter_conn_id),
        seen.to_json(),
        description="Highest meta.as_of seen by OpenRouterAsOfSensor for this connection (safe to delete).",
    )


# ---------------------------------------------------------------------------- single-flight probes
LEASE_PREFIX = "openrouter_probe_lease__"
#: How long a probe lease is held at most (a probe is one request: seconds, not minutes).
LEASE_SECONDS = 60.0
#: Time between writing a lease and reading it back: the last writer wins (as the chunk cache's lease).
LEASE_SETTLE_SECONDS = 0.5


def lease_key(openrouter_conn_id: str) -> str:
    return LEASE_PREFIX + openrouter_conn_id


def _read_lease(openrouter_conn_id: str) -> dict[str, object] | None:
    from airflow.sdk import Variable

    try:
        raw = Variable.get(lease_key(openrouter_conn_id), default=None)
        lease = json.loads(raw) if isinstance(raw, str) else raw
    except Exception:
        return None
    if (
        isinstance(lease, dict)
        and isinstance(lease.get("expires"), (int, float))
        and lease["expires"] > time.time()
    ):
        return lease
    return None


def try_probe_lease(
    openrouter_conn_id: str, seconds: float = LEASE_SECONDS, settle: float = LEASE_SETTLE_SECONDS
) -> str | None:
    """Claim the right to probe for this connection (so concurrent sensors of a backfill spend one
    probe, not one each); the token if won, None if another sensor holds it. Best effort: if the
    Variable cannot be written, every sensor probes for itself, as without the lease."""
    from airflow.sdk import Variable

    if _read_lease(openrouter_conn_id) is not None:
        return None
    token = uuid.uuid4().hex
    try:
        Variable.set(
            lease_key(openrouter_conn_id),
            json.dumps({"token": token, "expires": time.time() + seconds}),
            description="Single-flight lease of OpenRouterAsOfSensor probes (short-lived; safe to delete).",
        )
    except Exception as exc:
        log.warning(
            "Could not write Variable %s (%s); probing without the single-flight lease.",
            lease_key(openrouter_conn_id),
            exc,
        )
        return token
    time.sleep(settle)
    current = _read_lease(openrouter_conn_id)
    # another sensor's token wrote last: it probes; none at all: the lease did not persist, probe alone
    return token if current is None or current.get("token") == token else None


def release_probe_lease(openrouter_conn_id: str, token: str) -> None:
    """Give the lease back (expire it) if this token still holds it."""
    from airflow.sdk import Variable

    current = _read_lease(openrouter_conn_id)
    if current is None or current.get("token") != token:
        return
    try:
        Variable.set(lease_key(openrouter_conn_id), json.dumps({"token": token, "expires": 0}))
    except Exception:
        pass
