"""The newest session-cost snapshot seen per OpenRouter connection, in an Airflow Variable.

Snapshots are weekly: once a snapshot ending ``D`` has been seen, the next one cannot end before
``D + 7 days``, so it cannot exist before that day is over. The sensor
(:class:`~airflow_provider_openrouter.sensors.session_cost.OpenRouterSessionCostSensor`) asks
nothing until then; the operator and the sensor's probes tell the memory what they saw.

Variable ``openrouter_session_cost__<conn_id>``, JSON ``{"window_end_date": YYYY-MM-DD,
"window_days": int, "version": str, "as_of": ISO-8601, "base_url": URL}``. No secret in it (the
public base URL only, so switching the connection to another API forgets it). Only ever moves
forward (the newest ``window_end_date`` wins). Delete it to forget; a lost concurrent update costs
one probe later, nothing else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from airflow_provider_openrouter.runtime import variables
from airflow_provider_openrouter.runtime.variables import public_base_url

if TYPE_CHECKING:
    from airflow_provider_openrouter.api.datasets.session_cost import SessionCostMeta

log = logging.getLogger(__name__)

VARIABLE_PREFIX = "openrouter_session_cost__"


@dataclass(frozen=True)
class SeenSnapshot:
    """A published session-cost snapshot an answer showed for a connection."""

    window_end_date: date
    window_days: int
    version: str
    as_of: datetime
    base_url: str

    def to_json(self) -> dict[str, object]:
        return {
            "window_end_date": self.window_end_date.isoformat(),
            "window_days": self.window_days,
            "version": self.version,
            "as_of": self.as_of.isoformat(),
            "base_url": self.base_url,
        }

    @classmethod
    def from_json(cls, value: object) -> SeenSnapshot | None:
        """Parse a stored value; ``None`` (forget it) if it is not what this module wrote."""
        if not isinstance(value, dict):
            return None
        try:
            end = date.fromisoformat(str(value["window_end_date"]))
            days = value["window_days"]
            as_of = datetime.fromisoformat(str(value["as_of"]))
            version, base_url = str(value["version"]), str(value["base_url"])
        except (KeyError, ValueError):
            return None
        if as_of.tzinfo is None or isinstance(days, bool) or not isinstance(days, int):
            return None
        return cls(end, days, version, as_of, base_url)


def variable_key(openrouter_conn_id: str) -> str:
    return VARIABLE_PREFIX + openrouter_conn_id


def recall(openrouter_conn_id: str, base_url: str) -> SeenSnapshot | None:
    """The newest snapshot remembered for this connection, if it was seen on this same API."""
    return variables.recall_seen(variable_key(openrouter_conn_id), SeenSnapshot.from_json, base_url)


def remember(openrouter_conn_id: str, seen: SeenSnapshot) -> bool:
    """Store ``seen`` if it is newer than what is remembered; return whether it was stored."""
    seen = replace(seen, base_url=public_base_url(seen.base_url))
    current = recall(openrouter_conn_id, seen.base_url)
    if current is not None and current.window_end_date >= seen.window_end_date:
        return False
    return variables.write_json(
        variable_key(openrouter_conn_id),
        seen.to_json(),
        description="Newest OpenRouter session-cost snapshot seen for this connection (safe to delete).",
    )


def from_meta(meta: SessionCostMeta, base_url: str) -> SeenSnapshot | None:
    """What an answer's ``meta`` shows, None when no snapshot is published."""
    if meta.window_end_date is None or meta.window_days is None:
        return None
    return SeenSnapshot(
        meta.window_end_date, meta.window_days, meta.version, meta.as_of, public_base_url(base_url)
    )
