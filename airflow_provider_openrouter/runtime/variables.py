"""Small JSON memories in Airflow Variables, read and written without ever failing the task.

The as_of memory and the session-cost memory keep what they saw in one Variable per connection.
Losing a memory only costs a probe later, so an unreadable or read-only Variable is logged and
treated as absent, never raised. A memory holds the public base URL of the API it was seen on
(no secret) and is ignored for any other, so switching a connection to another API forgets it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)


class SeenOnApi(Protocol):
    """What a memory keeps: something an API answered, with that API's public base URL."""

    @property
    def base_url(self) -> str: ...


Seen = TypeVar("Seen", bound=SeenOnApi)


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


def public_base_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to store and to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def recall_seen(key: str, parse: Callable[[Any], Seen | None], base_url: str) -> Seen | None:
    """What Variable ``key`` remembers, read by ``parse`` (None: not what the memory wrote), if it
    was seen on the API at ``base_url`` (a memory of another API is ignored)."""
    seen = parse(read_json(key))
    if seen is None or seen.base_url != public_base_url(base_url):
        return None
    return seen
