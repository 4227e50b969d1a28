"""Getting a *complete* analytics answer: split the time range while the server truncates or times
out, then merge the slices, but only where merging is exact.

Pure: the request is a callable, so every rule is tested without HTTP.

Rules
-----
* A slice is complete when the answer is not ``truncated`` and its ``row_count`` is not above the
  rows returned. A ``QueryTimeoutError`` (HTTP 408) or an incomplete answer splits the slice in two;
  after a 408, pending slices at least as long as the one that timed out are split unasked.
* Split points are granularity boundaries when the query has a granularity (UTC; weeks start on
  Monday, months on the 1st), otherwise the hour, minute or second nearest the middle. No slice
  gets shorter than ``min_slice``; at that size a still incomplete answer is an error.
* Merging: rows are grouped by all their non-metric fields (dimensions and the time bucket).
  A group answered by one slice is kept as is; a group answered by several slices has its
  additive metrics summed exactly (``int``/``Decimal``). A metric with ``is_rate: true`` is
  averaged upstream and cannot be summed, so a query with one is split only at granularity
  boundaries, and any group still spanning two slices is an error, never a wrong number.
* Time ranges are half-open ``[start, end)``, like Airflow's data intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal, Inexact, localcontext
from typing import Any, Protocol

from airflow_provider_openrouter.analytics.limits import DEFAULT_MAX_REQUESTS, DEFAULT_MIN_SLICE
from airflow_provider_openrouter.analytics.query import (
    AnalyticsMeta,
    AnalyticsQuery,
    AnalyticsResult,
    QueryMetadata,
    TimeRange,
    format_timestamp,
)
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    OpenRouterError,
    QueryTimeoutError,
)

log = logging.getLogger(__name__)


class _InfoLogger(Protocol):
    """A stdlib logger, or a task's ``self.log`` (a structlog logger on Airflow 3.1+)."""

    def info(self, msg: str, /, *args: Any) -> Any: ...


_FIXED_STEPS = {"minute": 60, "hour": 3600, "day": 86400}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def bucket_start(moment: datetime, granularity: str) -> datetime | None:
    """Start of the UTC bucket holding ``moment``; None for a granularity without known boundaries."""
    moment = moment.astimezone(timezone.utc)
    if granularity in _FIXED_STEPS:
        step = _FIXED_STEPS[granularity]
        seconds = int((moment - _EPOCH).total_seconds()) // step * step
        return _EPOCH + timedelta(seconds=seconds)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return None


def next_bucket(start: datetime, granularity: str) -> datetime:
    """The bucket boundary after ``start`` (itself a boundary)."""
    if granularity in _FIXED_STEPS:
        return start + timedelta(seconds=_FIXED_STEPS[granularity])
    if granularity == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def count_buckets(time_range: TimeRange, granularity: str) -> int | None:
    """How many buckets ``[start, end)`` touches; None for an unknown granularity."""
    first = bucket_start(time_range.start, granularity)
    if first is None:
        return None
    if granularity in _FIXED_STEPS:
        last = bucket_start(time_range.end - timedelta(seconds=1), granularity)
        assert last is not None
        return int((last - first).total_seconds()) // _FIXED_STEPS[granularity] + 1
    count, cursor = 0, first
    while cursor < time_range.end:
        count, cursor = count + 1, next_bucket(cursor, granularity)
    return count


def rate_metrics(query: AnalyticsQuery, meta: AnalyticsMeta) -> list[str]:
    """Requested metrics that are averages (``is_rate``); unknown metrics count as rates."""
    return [name for name in query.metrics if (info := meta.metric(name)) is None or info.is_rate]


def split_time_range(
    time_range: TimeRange,
    query: AnalyticsQuery,
    meta: AnalyticsMeta,
    min_slice: timedelta = DEFAULT_MIN_SLICE,
) -> tuple[TimeRange, TimeRange]:
    """Two halves of ``time_range`` whose merged answers equal the whole's; raises
    :class:`OpenRouterError` saying why when no such split exists."""
    if time_range.span < 2 * min_slice:
        raise OpenRouterError(
            f"{time_range} is already the smallest slice allowed (min_slice={min_slice})"
        )
    low, high = time_range.start + min_slice, time_range.end - min_slice
    middle = time_range.start + time_range.span / 2
    rates = rate_metrics(query, meta)
    point: datetime | None = None
    if query.granularity is not None:
        start = bucket_start(middle, query.granularity)
        if start is not None:
            candidates = [
                c for c in (start, next_bucket(start, query.granularity)) if low <= c <= high
            ]
            point = min(candidates, key=lambda c: abs(c - middle), default=None)
    if point is None and rates:
        if query.granularity is None:
            raise OpenRouterError(
                f"rate metric(s) {', '.join(rates)} are averaged by OpenRouter, so answers for split time ranges "
                "cannot be added up. Query with a granularity (e.g. 'hour') so that every row belongs to one slice, "
                "drop the rate metric, or narrow the query with filters"
            )
        raise OpenRouterError(
            f"rate metric(s) {', '.join(rates)} can only be split at {query.granularity!r} boundaries, and {time_range} "
            f"has none that leaves slices of at least {min_slice}; use a finer granularity or narrow the query"
        )
    if point is None:
        for step in (3600, 60, 1):
            floor = _EPOCH + timedelta(
                seconds=int((middle - _EPOCH).total_seconds()) // step * step
            )
            point = next(
                (c for c in (floor, floor + timedelta(seconds=step)) if low <= c <= high), None
            )
            if point is not None:
                break
    assert point is not None  # span >= 2 * min_slice >= 2 s: the second grid always fits
    return TimeRange(time_range.start, point), TimeRange(point, time_range.end)


def _add(left: Any, right: Any) -> Any:
    if left is None:
        return right
    if right is None:
        return left
    if isinstance(left, Decimal) or isinstance(right, Decimal):
        a, b = Decimal(left), Decimal(right)
        if not (a.is_finite() and b.is_finite()):
            return a + b
        # exact whatever the magnitude: room from the highest digit of either to the lowest, plus a carry
        with localcontext() as context:
            context.prec = (
                max(a.adjusted(), b.adjusted(), 0) - min(_exponent(a), _exponent(b), 0) + 2
            )
            context.traps[Inexact] = True
            return a + b
    return left + right  # int + int stays int


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def merge_results(
    query: AnalyticsQuery, meta: AnalyticsMeta, parts: list[tuple[TimeRange, AnalyticsResult]]
) -> AnalyticsResult:
    """Merge complete answers of disjoint time slices (in time order) into one answer."""
    metrics = set(query.metrics)
    groups: dict[tuple[Any, ...], list[tuple[int, dict[str, Any]]]] = {}
    for index, (_, part) in enumerate(parts):
        if part.incomplete:
            raise OpenRouterError(
                f"refusing to merge the incomplete answer for slice {parts[index][0]}"
            )
        for row in part.rows:
            key = tuple(sorted((k, v) for k, v in row.items() if k not in metrics))
            groups.setdefault(key, []).append((index, row))
    rates = rate_metrics(query, meta)
    rows: list[dict[str, Any]] = []
    for key, members in groups.items():
        slices = {index for index, _ in members}
        if len(slices) == 1:
            rows.extend(row for _, row in members)
            continue
        label = ", ".join(f"{k}={v}" for k, v in key) or "(all rows)"
        if rates:
            raise OpenRouterError(
                f"the group {label} was answered by {len(slices)} time slices and rate metric(s) {', '.join(rates)} "
                "cannot be combined across slices; use a granularity whose buckets the slices do not cut"
            )
        if len(members) != len(slices):
            raise OpenRouterError(
                f"several rows of one slice share the fields {label}, so split answers cannot be matched up; "
                "query a dimension that identifies rows uniquely or a shorter time range"
            )
        merged = dict(members[0][1])
        for _, row in members[1:]:
            for name in query.metrics:
                merged[name] = _add(merged.get(name), row.get(name))
        rows.append(merged)
    warnings = list(dict.fromkeys(w for _, part in parts for w in part.metadata.warnings))
    order = query.order_by
    if order is not None and len(parts) > 1:
        if all(order.field in row and row[order.field] is not None for row in rows):
            try:
                rows.sort(key=lambda row: row[order.field], reverse=order.direction == "desc")
            except TypeError:
                warnings.append(
                    f"merged rows could not be re-sorted by {order.field!r} (mixed types)"
                )
        else:
            warnings.append(
                f"merged rows are in time-slice order: not every row has {order.field!r} to re-sort by"
            )
    metadata = QueryMetadata(
        query_time_ms=sum((part.metadata.query_time_ms for _, part in parts), start=0),
        row_count=len(rows),
        truncated=False,
        warnings=tuple(warnings),
    )
    return AnalyticsResult(
        rows=rows, metadata=metadata, query=query, slices=tuple(tr for tr, _ in parts)
    )


def check_complete_query(query: AnalyticsQuery, min_slice: timedelta) -> TimeRange:
    """What completeness needs before any request: a time range, a sane ``min_slice``, and no
    explicit ``group_limit`` low enough to drop time buckets without the ``truncated`` flag."""
    if query.time_range is None:
        raise InvalidParameterError(
            "A complete analytics query needs a time_range to split; set time_range=(start, end)."
        )
    if (
        not isinstance(min_slice, timedelta)
        or min_slice < timedelta(seconds=1)
        or min_slice.microseconds
    ):
        raise InvalidParameterError(
            f"min_slice={min_slice!r} must be a timedelta of whole seconds, at least one second."
        )
    if query.group_limit is not None and query.dimensions and query.granularity:
        buckets = count_buckets(query.time_range, query.granularity)
        if buckets is None or query.group_limit < buckets:
            raise InvalidParameterError(
                f"group_limit={query.group_limit} is below the {buckets or 'unknown number of'} {query.granularity!r} "
                f"buckets of {query.time_range}: the server would drop time buckets per group without flagging "
                "truncation. Leave group_limit unset (the server sizes it) or raise it."
            )
    return query.time_range


def collect_complete(
    query: AnalyticsQuery,
    meta: AnalyticsMeta,
    run: Callable[[AnalyticsQuery], AnalyticsResult],
    *,
    min_slice: timedelta = DEFAULT_MIN_SLICE,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    logger: _InfoLogger | None = None,
) -> AnalyticsResult:
    """Run ``query`` through ``run`` (one request each), splitting its time range on 408 or
    truncation until every slice is complete, and merge. Never returns an incomplete answer."""
    logger = logger or log
    pending = [check_complete_query(query, min_slice)]
    done: list[tuple[TimeRange, AnalyticsResult]] = []
    sent = 0
    timed_out_span: timedelta | None = None  # the shortest span that timed out so far
    while pending:
        time_range = pending.pop(0)
        if timed_out_span is not None and time_range.span >= timed_out_span:
            try:  # as long as one that timed out: split it without spending a request on it
                pending[0:0] = list(split_time_range(time_range, query, meta, min_slice))
                continue
            except OpenRouterError:
                pass
        if sent >= max_requests:
            raise OpenRouterError(
                f"Completing the analytics query {query.describe()} needs more than max_requests={max_requests} "
                f"requests ({len(done)} slice(s) done, {len(pending) + 1} pending). Narrow the query (filters, "
                "fewer dimensions, a coarser granularity, a higher limit) or raise max_requests."
            )
        sent += 1
        result: AnalyticsResult | None = None
        try:
            result = run(query.with_time_range(time_range))
        except QueryTimeoutError:
            timed_out_span = min(time_range.span, timed_out_span or time_range.span)
        if result is not None and not result.incomplete:
            done.append((time_range, result))
            continue
        timed_out = result is None
        reason = (
            "timed out (HTTP 408)"
            if result is None
            else (
                f"was truncated ({len(result.rows)} rows returned, row_count {result.metadata.row_count}, "
                f"limit {query.limit or 'default'})"
            )
        )
        try:
            halves = split_time_range(time_range, query, meta, min_slice)
        except OpenRouterError as exc:
            error = QueryTimeoutError if timed_out else OpenRouterError
            raise error(
                f"The analytics query for {time_range} {reason} and cannot be split further: {exc}. "
                "Nothing incomplete was returned."
            ) from None
        logger.info(
            "Analytics query for %s %s; splitting at %s.",
            time_range,
            reason,
            format_timestamp(halves[1].start),
        )
        pending[0:0] = list(halves)
    if len(done) == 1:
        return replace(done[0][1], slices=(done[0][0],))
    return merge_results(query, meta, done)
