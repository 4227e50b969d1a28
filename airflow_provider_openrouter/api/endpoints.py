"""The Data API's endpoints as pure request builders: path, query parameters and the window asked.

The sync hook and the async trigger both build their requests here and parse answers with
:mod:`airflow_provider_openrouter.api.validation`, so neither carries its own copy.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import (
    DATASET_FLOOR,
    MAX_WINDOW_DAYS,
    Window,
    parse_day,
)

KEY_PATH = "/key"

DayLike = date | datetime | str


def request_window(start_date: DayLike, end_date: DayLike) -> Window:
    """Check a window before a request is spent on it (the API would answer 400)."""
    start = parse_day(start_date, "start_date")
    end = parse_day(end_date, "end_date")
    if end < start:
        raise InvalidParameterError(f"end_date {end} is before start_date {start}.")
    if end < DATASET_FLOOR:
        raise InvalidParameterError(
            f"end_date {end} is before {DATASET_FLOOR}, the first day of OpenRouter's datasets: nothing to fetch."
        )
    span = (end - max(start, DATASET_FLOOR)).days + 1
    if span > MAX_WINDOW_DAYS:
        raise InvalidParameterError(
            f"window {start}..{end} spans {span} days; one request covers at most {MAX_WINDOW_DAYS}. "
            "Split it (windows.chunks) or use the operators, which split it for you."
        )
    return Window(start, end)


def window_params(window: Window) -> dict[str, Any]:
    return {"start_date": window.start.isoformat(), "end_date": window.end.isoformat()}
