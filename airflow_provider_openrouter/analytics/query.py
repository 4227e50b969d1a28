"""OpenRouter's beta analytics API as pure, typed pieces: a query, its checks and its JSON body.

``GET /analytics/meta`` lists what a query may name; :func:`validate_query` checks a query against
it before a request is spent. The answers (meta and query) are typed by :mod:`.analytics_answers`
and re-exported here; splitting a query into time slices and merging their answers lives in
:mod:`.analytics_split`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from airflow_provider_openrouter.analytics.answers import (
    ARRAY_OPERATORS,
    AnalyticsMeta,
    AnalyticsResult,
    DimensionInfo,
    MetricInfo,
    OperatorInfo,
    QueryMetadata,
    parse_analytics_meta,
    parse_query_response,
)
from airflow_provider_openrouter.exceptions import InvalidParameterError

ANALYTICS_META_PATH = "/analytics/meta"
ANALYTICS_QUERY_PATH = "/analytics/query"
MAX_DIMENSIONS = 2
MAX_FILTERS = 20
#: Rows the server returns when a query names no ``limit``.
#: The field that carries a row's time bucket (``order_by`` may name it).
TIME_FIELD = "date"
DIRECTIONS = ("asc", "desc")

__all__ = [
    "ANALYTICS_META_PATH",
    "ANALYTICS_QUERY_PATH",
    "ARRAY_OPERATORS",
    "MAX_DIMENSIONS",
    "MAX_FILTERS",
    "TIME_FIELD",
    "AnalyticsMeta",
    "AnalyticsQuery",
    "AnalyticsResult",
    "DimensionInfo",
    "Filter",
    "MetricInfo",
    "OperatorInfo",
    "OrderBy",
    "QueryMetadata",
    "TimeRange",
    "format_timestamp",
    "parse_analytics_meta",
    "parse_query_response",
    "validate_query",
]

Scalar = Union[str, int]
FilterValue = Union[Scalar, tuple[Scalar, ...]]
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})"
)


# ------------------------------------------------------------------------------------ query
def format_timestamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC, the only form the API accepts."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: Any, name: str) -> datetime:
    if isinstance(value, str):
        if not _TIMESTAMP_RE.fullmatch(value):
            raise InvalidParameterError(
                f"{name}={value!r} is not a full timestamp; use YYYY-MM-DDTHH:MM:SSZ (seconds included, UTC)."
            )
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise InvalidParameterError(
            f"{name} must be an aware datetime or a timestamp string, not {type(value).__name__}."
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidParameterError(
            f"{name}={value.isoformat()} has no timezone; pass an aware (UTC) datetime."
        )
    if value.microsecond:
        raise InvalidParameterError(
            f"{name}={value.isoformat()} has sub-second precision; the API takes whole seconds."
        )
    return datetime.fromtimestamp(value.timestamp(), timezone.utc)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC interval ``[start, end)`` with whole-second bounds."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _timestamp(self.start, "time_range.start"))
        object.__setattr__(self, "end", _timestamp(self.end, "time_range.end"))
        if self.end <= self.start:
            raise InvalidParameterError(
                f"time_range end {format_timestamp(self.end)} is not after its start {format_timestamp(self.start)}."
            )

    @classmethod
    def coerce(cls, value: Any) -> TimeRange:
        """Accept a TimeRange, ``{"start": ..., "end": ...}`` or a ``(start, end)`` pair."""
        if isinstance(value, TimeRange):
            return value
        if isinstance(value, Mapping) and set(value) == {"start", "end"}:
            return cls(value["start"], value["end"])
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1])
        raise InvalidParameterError(
            f"time_range={value!r} must be {{'start': ..., 'end': ...}} or a (start, end) pair."
        )

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def to_json(self) -> dict[str, str]:
        return {"start": format_timestamp(self.start), "end": format_timestamp(self.end)}

    def __str__(self) -> str:
        return f"{format_timestamp(self.start)}..{format_timestamp(self.end)}"


def _scalar(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


@dataclass(frozen=True)
class Filter:
    """``field operator value``; ``in``/``not_in`` take a list (stored as a tuple)."""

    field: str
    operator: str
    value: FilterValue
    include_unset: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise InvalidParameterError(f"filter field {self.field!r} must be a dimension name.")
        if not isinstance(self.operator, str) or not self.operator:
            raise InvalidParameterError(
                f"filter on {self.field!r}: operator {self.operator!r} must be a name such as 'eq'."
            )
        value = self.value
        if isinstance(value, (list, tuple)):
            if not value or not all(_scalar(v) for v in value):
                raise InvalidParameterError(
                    f"filter on {self.field!r}: {list(value)!r} must be a non-empty list of strings or integers."
                )
            object.__setattr__(self, "value", tuple(value))
        elif not _scalar(value):
            raise InvalidParameterError(
                f"filter on {self.field!r}: value {value!r} must be a string, an integer or a list of them."
            )
        if self.include_unset is not None and not isinstance(self.include_unset, bool):
            raise InvalidParameterError(
                f"filter on {self.field!r}: include_unset must be True, False or None."
            )

    @classmethod
    def coerce(cls, value: Any) -> Filter:
        """Accept a Filter, ``{"field", "operator", "value"[, "include_unset"]}`` or a triple."""
        if isinstance(value, Filter):
            return value
        if isinstance(value, Mapping) and {"field", "operator", "value"} <= set(value) <= {
            "field",
            "operator",
            "value",
            "include_unset",
        }:
            return cls(
                value["field"], value["operator"], value["value"], value.get("include_unset")
            )
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return cls(*value)
        raise InvalidParameterError(
            f"filter {value!r} must be {{'field': ..., 'operator': ..., 'value': ...}} or a triple."
        )

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "field": self.field,
            "operator": self.operator,
            "value": list(self.value) if isinstance(self.value, tuple) else self.value,
        }
        if self.include_unset is not None:
            body["include_unset"] = self.include_unset
        return body


@dataclass(frozen=True)
class OrderBy:
    """Sort rows by a metric, a requested dimension or ``date``."""

    field: str
    direction: str = "desc"

    def __post_init__(self) -> None:
        if not isinstance(self.field, str) or not self.field:
            raise InvalidParameterError(
                f"order_by field {self.field!r} must be a metric, dimension or 'date'."
            )
        if self.direction not in DIRECTIONS:
            raise InvalidParameterError(
                f"order_by direction {self.direction!r} must be one of {', '.join(DIRECTIONS)}."
            )

    @classmethod
    def coerce(cls, value: Any) -> OrderBy:
        if isinstance(value, OrderBy):
            return value
        if isinstance(value, Mapping) and "field" in value and set(value) <= {"field", "direction"}:
            return cls(value["field"], value.get("direction", "desc"))
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(value[0], value[1])
        raise InvalidParameterError(
            f"order_by={value!r} must be {{'field': ..., 'direction': 'asc'|'desc'}}."
        )

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "direction": self.direction}


def _names(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidParameterError(f"{what} must be a list of names, not {value!r}.")
    names = tuple(value)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise InvalidParameterError(f"{what} must be names (strings); got {bad[0]!r}.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidParameterError(f"{what} names {', '.join(duplicates)} more than once.")
    return names


def _positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"{name}={value!r} must be a positive integer.")
    return value


@dataclass(frozen=True)
class AnalyticsQuery:
    """One analytics query. The constructor takes plain lists/dicts/pairs and checks the shape
    (at most 2 dimensions and 20 filters, whole-second aware time bounds) without the meta answer;
    :func:`validate_query` then checks the names against it."""

    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    granularity: str | None = None
    time_range: TimeRange | None = None
    limit: int | None = None
    group_limit: int | None = None
    order_by: OrderBy | None = None

    def __post_init__(self) -> None:
        metrics = _names(self.metrics, "metrics")
        if not metrics:
            raise InvalidParameterError("metrics must name at least one metric.")
        dimensions = _names(self.dimensions, "dimensions")
        if len(dimensions) > MAX_DIMENSIONS:
            raise InvalidParameterError(
                f"{len(dimensions)} dimensions ({', '.join(dimensions)}); a query takes at most {MAX_DIMENSIONS}."
            )
        raw_filters = () if self.filters is None else self.filters
        if isinstance(raw_filters, (str, Mapping)) or not isinstance(raw_filters, Sequence):
            raise InvalidParameterError(f"filters must be a list of filters, not {raw_filters!r}.")
        if len(raw_filters) > MAX_FILTERS:
            raise InvalidParameterError(
                f"{len(raw_filters)} filters; a query takes at most {MAX_FILTERS}."
            )
        if self.granularity is not None and (
            not isinstance(self.granularity, str) or not self.granularity
        ):
            raise InvalidParameterError(
                f"granularity={self.granularity!r} must be a name such as 'day'."
            )
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "dimensions", dimensions)
        object.__setattr__(self, "filters", tuple(Filter.coerce(f) for f in raw_filters))
        object.__setattr__(
            self,
            "time_range",
            None if self.time_range is None else TimeRange.coerce(self.time_range),
        )
        object.__setattr__(self, "limit", _positive_int(self.limit, "limit"))
        object.__setattr__(self, "group_limit", _positive_int(self.group_limit, "group_limit"))
        object.__setattr__(
            self, "order_by", None if self.order_by is None else OrderBy.coerce(self.order_by)
        )

    def with_time_range(self, time_range: TimeRange) -> AnalyticsQuery:
        return replace(self, time_range=time_range)

    def to_body(self) -> dict[str, Any]:
        """The JSON body of ``POST /analytics/query`` (unset parts omitted)."""
        body: dict[str, Any] = {"metrics": list(self.metrics)}
        if self.dimensions:
            body["dimensions"] = list(self.dimensions)
        if self.filters:
            body["filters"] = [f.to_json() for f in self.filters]
        optional = {
            "granularity": self.granularity,
            "time_range": self.time_range.to_json() if self.time_range else None,
            "limit": self.limit,
            "group_limit": self.group_limit,
            "order_by": self.order_by.to_json() if self.order_by else None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def describe(self) -> str:
        parts = [f"metrics={','.join(self.metrics)}"]
        if self.dimensions:
            parts.append(f"dimensions={','.join(self.dimensions)}")
        if self.granularity:
            parts.append(f"granularity={self.granularity}")
        if self.filters:
            parts.append(f"{len(self.filters)} filter(s)")
        if self.time_range:
            parts.append(f"time_range={self.time_range}")
        return " ".join(parts)


def _choices(names: Sequence[str]) -> str:
    return ", ".join(names) or "(none)"


def validate_query(query: AnalyticsQuery, meta: AnalyticsMeta) -> None:
    """Raise :class:`InvalidParameterError` naming the first item the meta answer does not allow."""
    for name in query.metrics:
        if meta.metric(name) is None:
            raise InvalidParameterError(
                f"metric {name!r} is not available; valid metrics: {_choices(meta.metric_names)}."
            )
    for name in query.dimensions:
        if name not in meta.dimension_names:
            raise InvalidParameterError(
                f"dimension {name!r} is not available; valid dimensions: {_choices(meta.dimension_names)}."
            )
    if query.granularity is not None and query.granularity not in meta.granularities:
        raise InvalidParameterError(
            f"granularity {query.granularity!r} is not available; valid granularities: {_choices(meta.granularities)}."
        )
    for index, item in enumerate(query.filters):
        where = f"filter {index} ({item.field} {item.operator} {item.value!r})"
        if item.field not in meta.dimension_names:
            raise InvalidParameterError(
                f"{where}: field {item.field!r} is not a dimension; valid fields: {_choices(meta.dimension_names)}."
            )
        operator = meta.operator(item.operator)
        if operator is None:
            raise InvalidParameterError(
                f"{where}: operator {item.operator!r} is not available; valid operators: {_choices(meta.operator_names)}."
            )
        is_list = isinstance(item.value, tuple)
        if operator.value_type == "array" and not is_list:
            raise InvalidParameterError(
                f"{where}: operator {item.operator!r} takes a list of values, e.g. [{item.value!r}]."
            )
        if operator.value_type != "array" and is_list:
            raise InvalidParameterError(
                f"{where}: operator {item.operator!r} takes one value, not a list; use 'in' for several."
            )
    if query.order_by is not None:
        allowed = (*meta.metric_names, *query.dimensions, TIME_FIELD)
        if query.order_by.field not in allowed:
            raise InvalidParameterError(
                f"order_by field {query.order_by.field!r} is not a metric, a requested dimension or {TIME_FIELD!r}; "
                f"valid fields: {_choices(allowed)}."
            )
