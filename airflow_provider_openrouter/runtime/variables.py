"""Small JSON memories in Airflow Variables, read and written without ever failing the task.

The as_of memory and the session-cost memory keep what they saw in one Variable per connection.
Losing a memory only costs a probe later, so an unreadable or read-only Variable is logged and
treated as absent, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def read_json(key: str) -> Any:
    """The JSON value of Variable ``key``; None when it is absent or cannot be read (logged)."""
    from airflow.sdk import Variable

    try:
        return Variable.get(key, default=None, deserialize_json=True)
    except Exception as exc:  # an unreadable memory only costs a probe
        log.warning("Could not read Variable %s (%s); probing instead.", key, exc)
        return None


def write_json(key: str, value: Any, description: str) -> bool:
    """Store ``value`` as JSON in Variable ``key``; False (logged) when the Variable cannot be written."""
    from airflow.sdk import Variable

    try:
        Variable.set(key, value, description=description, serialize_json=True)
    except (
        Exception
    ) as exc:  # never fail a task that has its answer because the memory is read-only
        log.warning("Could not store Variable %s (%s); later runs will probe again.", key, exc)
        return False
    return True
