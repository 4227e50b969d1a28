"""The analytics dataset in the lake: one query's rows per UTC day, as the api/datasets modules
describe theirs (name, partition layout, columns, source line).

Layout, under an ``output_uri``::

    analytics/{query_name}/date=YYYY-MM-DD/{data.jsonl, _manifest.json}

Unlike the public datasets, the rows are the organisation's own usage (read with a management
key): there is no citation and no first day, and the columns depend on the query. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timezone
from typing import Any

from airflow_provider_openrouter.analytics.query import TIME_FIELD, AnalyticsQuery, TimeRange
from airflow_provider_openrouter.exceptions import InvalidParameterError, InvalidResponseError
from airflow_provider_openrouter.windows.intervals import ONE_DAY

#: The dataset's name in manifests, summaries and asset events.
NAME = "analytics"
#: No citation: the rows are the organisation's own usage. The manifests say where they come from.
CITATION = None
SOURCE = (
    "OpenRouter analytics API (beta): the organisation's own usage, read with a management key."
)
NUMBERS = (
    "Counts are JSON integers; decimal values (e.g. cost) are JSON numbers carrying every digit the API "
    "sent. Parse them as decimals (e.g. json.loads(..., parse_float=decimal.Decimal)), not binary floats."
)
#: Granularities whose buckets never straddle a UTC day (None: one total per day and group).
DAY_PARTITIONABLE = (None, "minute", "hour", "day")
#: The only data format: rows are free-form and decimal costs are kept exact.
FORMAT = "jsonl"

_QUERY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_query_name(query_name: Any) -> str:
    """A query name usable as a directory name, or :class:`InvalidParameterError`."""
    if not isinstance(query_name, str) or not _QUERY_NAME_RE.fullmatch(query_name):
        raise InvalidParameterError(
            f"query_name={query_name!r} must be 1-128 letters, digits, '.', '_' or '-' (it is a directory name)."
        )
    return query_name


def check_granularity(granularity: str | None) -> None:
    """Refuse a granularity whose buckets cannot be filed under one UTC day."""
    if granularity not in DAY_PARTITIONABLE:
        why = (
            "its buckets span several days, so they cannot be filed under one UTC day"
            if granularity in ("week", "month")
            else "this operator partitions by UTC day and only knows buckets that nest in a day"
        )
        raise InvalidParameterError(
            f"granularity={granularity!r} cannot be written to daily partitions: {why}. Use 'day', 'hour', "
            "'minute' or None, and aggregate weeks or months downstream."
        )


def check_format(data_format: str) -> None:
    if data_format != FORMAT:
        raise InvalidParameterError(
            f"format={data_format!r} is not supported for analytics; use 'jsonl' (rows are free-form and "
            "decimal costs are kept exact as JSON numbers)."
        )


def dataset_dir(query_name: str) -> str:
    """``analytics/{query_name}``, relative to ``output_uri`` (the asset of the query)."""
    return f"{NAME}/{query_name}"


def partition_key(query_name: str, day: date) -> str:
    """``analytics/{query_name}/date=YYYY-MM-DD``, relative to ``output_uri``."""
    return f"{dataset_dir(query_name)}/date={day.isoformat()}"


def columns(query: AnalyticsQuery) -> tuple[tuple[str, str], ...]:
    """Column name -> kind of a query's rows, in the API's order: the time bucket (when the query
    has a granularity), the dimensions, then the metrics (integers or exact decimals)."""
    bucket = ((TIME_FIELD, "string"),) if query.granularity else ()
    return (
        *bucket,
        *((name, "string") for name in query.dimensions),
        *((name, "number") for name in query.metrics),
    )


def day_range(first: date, last: date | None = None) -> TimeRange:
    """``[first 00:00Z, (last or first) + 1 day 00:00Z)``."""
    return TimeRange(
        datetime.combine(first, time(0), tzinfo=timezone.utc),
        datetime.combine((last or first) + ONE_DAY, time(0), tzinfo=timezone.utc),
    )


def check_rows_in_day(rows: Sequence[Mapping[str, Any]], time_range: TimeRange) -> None:
    """Refuse rows whose time bucket (``date``) lies outside the day they are filed under."""
    for index, row in enumerate(rows):
        raw = row.get(TIME_FIELD)
        if not isinstance(raw, str):
            continue
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            continue  # a label format we do not know: the time range asked for is what binds the row
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        if not time_range.start <= moment < time_range.end:
            raise InvalidResponseError(
                f"Invalid analytics response from OpenRouter: row {index} has {TIME_FIELD}={raw!r}, outside the "
                f"time range asked for ({time_range}). Nothing was written.",
                field=TIME_FIELD,
                row=index,
            )
