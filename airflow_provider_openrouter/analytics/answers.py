"""Answers of OpenRouter's beta analytics API, typed and checked: ``GET /analytics/meta`` and
``POST /analytics/query``.

Pure functions: a malformed answer raises :class:`InvalidResponseError` naming the field and the
row. Numbers stay exact: the client decodes JSON with ``parse_float=Decimal`` and integers stay
``int``; a binary ``float`` is rejected because it may already have lost digits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain, compress, repeat
from operator import contains, is_, itemgetter
from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.api.answers import invalid_response
from airflow_provider_openrouter.exceptions import InvalidResponseError

if TYPE_CHECKING:
    from airflow_provider_openrouter.analytics.query import AnalyticsQuery, TimeRange

#: Operators that take a list when the meta answer does not say (``value_type``).
ARRAY_OPERATORS = ("in", "not_in")


# ------------------------------------------------------------------------------------- meta
@dataclass(frozen=True)
class MetricInfo:
    """A metric the API computes; ``is_rate`` metrics are averaged, never summed."""

    name: str
    display_label: str
    is_rate: bool
    display_format: str | None = None


@dataclass(frozen=True)
class DimensionInfo:
    """A dimension rows can be grouped and filtered by."""

    name: str
    display_label: str


@dataclass(frozen=True)
class OperatorInfo:
    """A filter operator; ``value_type`` is ``scalar`` or ``array``."""

    name: str
    value_type: str


@dataclass(frozen=True)
class AnalyticsMeta:
    """The parsed ``GET /analytics/meta`` answer; ``raw`` keeps it verbatim."""

    metrics: tuple[MetricInfo, ...]
    dimensions: tuple[DimensionInfo, ...]
    granularities: tuple[str, ...]
    operators: tuple[OperatorInfo, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def metric(self, name: str) -> MetricInfo | None:
        return next((m for m in self.metrics if m.name == name), None)

    def operator(self, name: str) -> OperatorInfo | None:
        return next((o for o in self.operators if o.name == name), None)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def operator_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.operators)


def _invalid(
    message: str, *, field: str | None = None, row: int | None = None
) -> InvalidResponseError:
    return invalid_response(
        message, field=field, row=row, what="analytics response", api="beta API"
    )


def _items(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise _invalid(
            f"expected a non-empty list, got {type(value).__name__}", field=f"data.{key}"
        )
    return value


def _name_and_label(item: Any, where: str) -> tuple[str, str, Mapping[str, Any]]:
    """Items are objects ``{name, display_label, ...}``; a bare string is accepted as a name."""
    if isinstance(item, str) and item:
        return item, item, {}
    if isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"]:
        label = item.get("display_label")
        return item["name"], label if isinstance(label, str) else item["name"], item
    raise _invalid(f"{item!r} has no string 'name'", field=where)


def parse_analytics_meta(payload: Any) -> AnalyticsMeta:
    """Type a meta answer. A metric without a boolean ``is_rate`` is treated as a rate (never summed)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
        raise _invalid("expected an object with a 'data' object", field="data")
    data = payload["data"]
    metrics = []
    for item in _items(data, "metrics"):
        name, label, obj = _name_and_label(item, "data.metrics")
        is_rate = obj.get("is_rate")
        fmt = obj.get("display_format")
        metrics.append(
            MetricInfo(
                name,
                label,
                is_rate if isinstance(is_rate, bool) else True,
                fmt if isinstance(fmt, str) else None,
            )
        )
    dimensions = [
        DimensionInfo(*_name_and_label(i, "data.dimensions")[:2])
        for i in _items(data, "dimensions")
    ]
    granularities = [
        _name_and_label(i, "data.granularities")[0] for i in _items(data, "granularities")
    ]
    operators = []
    for item in _items(data, "operators"):
        name, _, obj = _name_and_label(item, "data.operators")
        kind = obj.get("value_type")
        operators.append(
            OperatorInfo(
                name,
                kind
                if kind in ("scalar", "array")
                else ("array" if name in ARRAY_OPERATORS else "scalar"),
            )
        )
    return AnalyticsMeta(
        tuple(metrics), tuple(dimensions), tuple(granularities), tuple(operators), raw=dict(data)
    )


# --------------------------------------------------------------------------------- response
@dataclass(frozen=True)
class QueryMetadata:
    """The ``metadata`` of a query answer (``cached_at`` and ``warnings`` are optional upstream)."""

    query_time_ms: int | Decimal
    row_count: int
    truncated: bool
    cached_at: int | Decimal | str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalyticsResult:
    """Rows (free-form dicts keyed by metric, dimension and time bucket) and their metadata.

    ``slices`` lists the complete time slices the answer was assembled from by
    :meth:`OpenRouterHook.query_analytics_complete` (one or more); it is empty for a plain query.
    """

    rows: list[dict[str, Any]]
    metadata: QueryMetadata
    query: AnalyticsQuery | None = None
    slices: tuple[TimeRange, ...] = ()

    @property
    def incomplete(self) -> bool:
        """True when the server cut rows: ``truncated``, or a ``row_count`` above the rows returned."""
        return self.metadata.truncated or self.metadata.row_count > len(self.rows)


def _number(value: Any, *, field: str) -> int | Decimal:
    if isinstance(value, float):
        raise _invalid(
            f"{value!r} is a binary float and may have lost digits; decode JSON with parse_float=Decimal",
            field=field,
        )
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, Decimal))
        or (isinstance(value, Decimal) and not value.is_finite())
    ):
        raise _invalid(f"{value!r} ({type(value).__name__}) is not a number", field=field)
    return value


#: Exact value types a row may hold without a closer look (``bool`` is accepted as a scalar, as an
#: ``int`` subclass; only metric values must be numbers).
_PLAIN = frozenset({str, int, bool, type(None)})
_PLAIN_OR_DECIMAL = _PLAIN | {Decimal}


def _check_row(item: Any, index: int, query: AnalyticsQuery | None) -> dict[str, Any]:
    row = dict(item) if type(item) is dict and _plain_values(item) else _checked_values(item, index)
    if query is not None:
        for name in (*query.dimensions, *query.metrics):
            if name not in row:
                raise _invalid(f"missing requested field {name!r}", field=name, row=index)
        for name in query.metrics:
            value = row[name]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, Decimal))
            ):
                raise _invalid(
                    f"metric value {value!r} ({type(value).__name__}) is not a number",
                    field=name,
                    row=index,
                )
    return row


def _plain_rows(items: list[Any], query: AnalyticsQuery | None) -> list[dict[str, Any]] | None:
    """Copies of valid rows of plain ``dict`` objects, checked column by column over the whole
    answer, or None to check row by row (which names the row and field of the first broken rule)."""
    if not items:
        return []
    if set(map(type, items)) != _DICT:
        return None
    values = list(chain.from_iterable(map(dict.values, items)))
    kinds = set(map(type, values))
    if not kinds <= _PLAIN and not (
        kinds <= _PLAIN_OR_DECIMAL
        and all(
            map(Decimal.is_finite, compress(values, map(is_, map(type, values), repeat(Decimal))))
        )
    ):
        return None
    if query is not None:
        for name in (*query.dimensions, *query.metrics):
            if not all(map(contains, items, repeat(name))):
                return None
        for name in query.metrics:
            if not set(map(type, map(itemgetter(name), items))) <= _METRIC:
                return None
    return list(map(dict, items))


_DICT = {dict}
#: Exact types of a metric's values (``bool`` is not a number here).
_METRIC = frozenset({int, Decimal, type(None)})


def _plain_values(item: dict[str, Any]) -> bool:
    """True when every value is a plain scalar (a ``Decimal`` must also be finite)."""
    kinds = set(map(type, item.values()))
    if kinds <= _PLAIN:
        return True
    return kinds <= _PLAIN_OR_DECIMAL and all(
        v.is_finite() for v in item.values() if type(v) is Decimal
    )


def _checked_values(item: Any, index: int) -> dict[str, Any]:
    """Value by value: a copy of a valid row, else the error naming the row and field."""
    if not isinstance(item, Mapping):
        raise _invalid(f"row is {type(item).__name__}, not an object", row=index)
    row: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, float):
            raise _invalid(
                f"{value!r} is a binary float and may have lost digits; decode JSON with parse_float=Decimal",
                field=key,
                row=index,
            )
        if isinstance(value, Decimal) and not value.is_finite():
            raise _invalid(f"{value!r} is not a finite number", field=key, row=index)
        if not (value is None or isinstance(value, (str, int, Decimal))):
            raise _invalid(
                f"{value!r} ({type(value).__name__}) is not a scalar", field=key, row=index
            )
        row[key] = value
    return row


def parse_query_response(payload: Any, query: AnalyticsQuery | None = None) -> AnalyticsResult:
    """Validate ``{"data": {"data": [...], "metadata": {...}, "cachedAt"?, "warnings"?}}``.

    Row values must be scalars; numbers stay ``int``/``Decimal`` (a ``float`` is rejected: it may
    have lost digits). With ``query``, every row must carry its dimensions and numeric metrics.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
        raise _invalid("expected an object with a 'data' object", field="data")
    data = payload["data"]
    rows_in = data.get("data")
    if not isinstance(rows_in, list):
        raise _invalid(f"expected a list of rows, got {type(rows_in).__name__}", field="data.data")
    raw = data.get("metadata")
    if not isinstance(raw, Mapping):
        raise _invalid(f"expected an object, got {type(raw).__name__}", field="data.metadata")
    query_time = _number(raw.get("query_time_ms"), field="metadata.query_time_ms")
    row_count = raw.get("row_count")
    if isinstance(row_count, bool) or not isinstance(row_count, int) or row_count < 0:
        raise _invalid(f"{row_count!r} is not a non-negative integer", field="metadata.row_count")
    truncated = raw.get("truncated")
    if not isinstance(truncated, bool):
        raise _invalid(f"{truncated!r} is not a boolean", field="metadata.truncated")
    cached_at = data.get("cachedAt")
    if cached_at is not None and not isinstance(cached_at, str):
        cached_at = _number(cached_at, field="cachedAt")
    warnings = data.get("warnings") or []
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise _invalid(f"{warnings!r} is not a list of strings", field="warnings")
    rows = _plain_rows(rows_in, query)
    if rows is None:
        rows = [_check_row(item, index, query) for index, item in enumerate(rows_in)]
    if row_count < len(rows):
        raise _invalid(
            f"row_count {row_count} is below the {len(rows)} rows returned",
            field="metadata.row_count",
        )
    metadata = QueryMetadata(query_time, row_count, truncated, cached_at, tuple(warnings))
    return AnalyticsResult(rows=rows, metadata=metadata, query=query)
