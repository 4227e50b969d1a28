"""Defaults of a complete analytics query (:mod:`airflow_provider_openrouter.analytics.split`).

A module of its own so that code which only needs the defaults (the hook's signatures) does not
import the query and answer models.
"""

from __future__ import annotations

from datetime import timedelta

#: The shortest slice a complete query splits down to.
DEFAULT_MIN_SLICE = timedelta(hours=1)
#: The most requests a complete query may spend.
DEFAULT_MAX_REQUESTS = 50
