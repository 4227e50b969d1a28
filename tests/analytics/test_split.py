"""Splitting a query's time range and merging the slices: every rule, without HTTP.

The "server" is the emulator's pure query engine, so merged answers are checked against the
answer of one unsplit query over the same synthetic usage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.analytics.query import (
    AnalyticsQuery,
    AnalyticsResult,
    QueryMetadata,
    TimeRange,
    parse_analytics_meta,
    parse_query_response,
)
from airflow_provider_openrouter.analytics.split import (
    bucket_start,
    collect_complete,
    count_buckets,
    merge_results,
    next_bucket,
    split_time_range,
)
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    OpenRouterError,
    QueryTimeoutError,
)
from airflow_provider_openrouter.testing import analytics_engine as engine

UTC = timezone.utc
NOW = datetime(2025, 6, 1, tzinfo=UTC)
META = parse_analytics_meta(engine.meta_payload())
DAY = TimeRange(datetime(2025, 5, 6, tzinfo=UTC), datetime(2025, 5, 7, tzinfo=UTC))
TWO_DAYS = TimeRange(DAY.start, DAY.start + timedelta(days=2))


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def server(
    calls: list[TimeRange], timeout_span: timedelta | None = None
) -> Callable[[AnalyticsQuery], AnalyticsResult]:
    """One request to the emulator's engine, decoded and parsed as the hook does."""

    def run(query: AnalyticsQuery) -> AnalyticsResult:
        assert query.time_range is not None
        calls.append(query.time_range)
        try:
            answer = engine.run_query(json.dumps(query.to_body()).encode(), NOW, timeout_span)
        except engine.QueryError as exc:
            assert exc.status == 408, exc.message
            raise QueryTimeoutError(exc.message) from None
        return parse_query_response(json.loads(engine.dumps(answer), parse_float=Decimal), query)

    return run


def truth(query: AnalyticsQuery) -> list[dict[str, Any]]:
    return server([])(
        AnalyticsQuery(
            query.metrics,
            query.dimensions,
            query.filters,
            query.granularity,
            query.time_range,
            limit=10_000,
        )
    ).rows


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


# ------------------------------------------------------------------------------ buckets


@pytest.mark.parametrize(
    "granularity,moment,start,following",
    [
        ("minute", "2025-05-06T10:17:42", "2025-05-06T10:17:00", "2025-05-06T10:18:00"),
        ("hour", "2025-05-06T10:17:42", "2025-05-06T10:00:00", "2025-05-06T11:00:00"),
        ("day", "2025-05-06T10:17:42", "2025-05-06T00:00:00", "2025-05-07T00:00:00"),
        (
            "week",
            "2025-05-11T23:59:59",
            "2025-05-05T00:00:00",
            "2025-05-12T00:00:00",
        ),  # Sunday -> Monday
        ("month", "2025-12-31T10:00:00", "2025-12-01T00:00:00", "2026-01-01T00:00:00"),
    ],
)
def test_buckets(granularity: str, moment: str, start: str, following: str) -> None:
    assert bucket_start(t(moment), granularity) == t(start)
    assert next_bucket(t(start), granularity) == t(following)


def test_count_buckets() -> None:
    assert (
        count_buckets(DAY, "hour") == 24
        and count_buckets(DAY, "minute") == 1440
        and count_buckets(DAY, "day") == 1
    )
    assert count_buckets(TimeRange(t("2025-05-06T10:30:00"), t("2025-05-06T12:00:01")), "hour") == 3
    assert (
        count_buckets(TimeRange(t("2025-01-31T00:00:00"), t("2025-03-01T00:00:00")), "month") == 2
    )
    assert count_buckets(TimeRange(t("2025-05-04T00:00:00"), t("2025-05-13T00:00:00")), "week") == 3
    assert count_buckets(DAY, "fortnight") is None and bucket_start(DAY.start, "fortnight") is None


# ------------------------------------------------------------------------------ split points


def split(
    window: TimeRange, min_slice: timedelta = timedelta(hours=1), **query: Any
) -> tuple[str, str]:
    first, second = split_time_range(
        window, AnalyticsQuery(**{"metrics": ["cost"], **query}), META, min_slice
    )
    assert first.start == window.start and first.end == second.start and second.end == window.end
    return str(first), str(second)


def test_split_points_follow_the_granularity_then_round_instants() -> None:
    assert split(TWO_DAYS)[0].endswith("2025-05-07T00:00:00Z")
    three_days = TimeRange(DAY.start, DAY.start + timedelta(days=3))
    assert split(three_days, granularity="day")[0].endswith(
        ("2025-05-07T00:00:00Z", "2025-05-08T00:00:00Z")
    )
    odd = TimeRange(t("2025-05-06T00:00:00"), t("2025-05-06T03:00:00"))
    assert split(odd)[0].endswith("01:00:00Z")  # the hour grid before the 01:30 middle
    inside_a_month = TimeRange(t("2025-05-06T00:00:00"), t("2025-05-06T05:00:00"))
    assert split(inside_a_month, granularity="month")[0].endswith(
        "02:00:00Z"
    )  # additive: any instant works
    seconds = TimeRange(t("2025-05-06T00:00:00"), t("2025-05-06T00:00:03"))
    assert split(seconds, timedelta(seconds=1))[0].endswith("00:00:01Z")
    assert split(
        TimeRange(t("2025-05-06T00:00:00"), t("2025-05-06T00:02:01")), timedelta(minutes=1)
    )[0].endswith("00:01:00Z")


def test_no_split_below_min_slice() -> None:
    with pytest.raises(OpenRouterError, match="smallest slice allowed"):
        split(TimeRange(DAY.start, DAY.start + timedelta(minutes=119)))


def test_rate_metrics_split_only_at_granularity_boundaries() -> None:
    with pytest.raises(OpenRouterError, match="averaged by OpenRouter.*Query with a granularity"):
        split(TWO_DAYS, metrics=["avg_latency_ms"])
    with pytest.raises(OpenRouterError, match="only be split at 'month' boundaries"):
        split(TWO_DAYS, metrics=["cost", "avg_latency_ms"], granularity="month")
    assert split(TWO_DAYS, metrics=["avg_latency_ms"], granularity="hour")[0].endswith(
        "2025-05-07T00:00:00Z"
    )
    weeks = TimeRange(t("2025-05-01T00:00:00"), t("2025-05-20T00:00:00"))
    assert split(weeks, metrics=["avg_latency_ms"], granularity="week")[0].endswith(
        "2025-05-12T00:00:00Z"
    )


# ------------------------------------------------------------------------------ merging


def part(
    rows: list[dict[str, Any]], window: TimeRange = DAY, **metadata: Any
) -> tuple[TimeRange, AnalyticsResult]:
    meta = {"query_time_ms": 5, "row_count": len(rows), "truncated": False, **metadata}
    return window, AnalyticsResult(rows=rows, metadata=QueryMetadata(**meta))


def test_merge_sums_additive_metrics_exactly_and_keeps_single_slice_rows() -> None:
    query = AnalyticsQuery(
        ["request_count", "cost"], ["model"], order_by={"field": "cost", "direction": "desc"}
    )
    merged = merge_results(
        query,
        META,
        [
            part(
                [
                    {"model": "a", "request_count": 2**53, "cost": Decimal("0.100000000001")},
                    {"model": "b", "request_count": 1, "cost": None},
                ],
                warnings=("w1",),
            ),
            part(
                [
                    {"model": "a", "request_count": 1, "cost": Decimal("0.200000000002")},
                    {"model": "b", "request_count": 2, "cost": Decimal("5")},
                    {"model": "c", "request_count": 7, "cost": Decimal("1")},
                ],
                warnings=("w1", "w2"),
            ),
        ],
    )
    assert merged.rows == [
        {"model": "b", "request_count": 3, "cost": Decimal("5")},
        {"model": "c", "request_count": 7, "cost": Decimal("1")},
        {"model": "a", "request_count": 2**53 + 1, "cost": Decimal("0.300000000003")},
    ]
    assert (
        merged.metadata == QueryMetadata(10, 3, False, None, ("w1", "w2"))
        and len(merged.slices) == 2
        and not merged.incomplete
    )


def test_merge_refuses_what_it_cannot_combine() -> None:
    rate = AnalyticsQuery(["avg_latency_ms"], ["model"], granularity="week")
    week = {"date": "2025-05-04T00:00:00Z", "model": "a"}
    with pytest.raises(
        OpenRouterError,
        match=r"group date=2025-05-04T00:00:00Z, model=a was answered by 2 time slices",
    ):
        merge_results(
            rate,
            META,
            [
                part([{**week, "avg_latency_ms": Decimal(10)}]),
                part([{**week, "avg_latency_ms": Decimal(30)}]),
            ],
        )
    same_label = AnalyticsQuery(["cost"], ["app"])
    with pytest.raises(OpenRouterError, match="several rows of one slice share the fields app=Bot"):
        merge_results(
            same_label,
            META,
            [
                part([{"app": "Bot", "cost": 1}, {"app": "Bot", "cost": 2}]),
                part([{"app": "Bot", "cost": 3}]),
            ],
        )
    with pytest.raises(OpenRouterError, match="incomplete answer"):
        merge_results(same_label, META, [part([{"app": "x", "cost": 1}], truncated=True), part([])])
    # rate rows that each belong to one slice are concatenated untouched
    merged = merge_results(
        rate,
        META,
        [
            part([{**week, "avg_latency_ms": Decimal(10)}]),
            part([{**week, "date": "2025-05-11T00:00:00Z", "avg_latency_ms": Decimal(30)}]),
        ],
    )
    assert [r["avg_latency_ms"] for r in merged.rows] == [Decimal(10), Decimal(30)]


def test_merge_warns_when_it_cannot_restore_the_order() -> None:
    query = AnalyticsQuery(
        ["cost"], ["model"], order_by={"field": "request_count", "direction": "desc"}
    )
    merged = merge_results(
        query, META, [part([{"model": "a", "cost": 1}]), part([{"model": "b", "cost": 2}])]
    )
    assert [r["model"] for r in merged.rows] == [
        "a",
        "b",
    ] and "time-slice order" in merged.metadata.warnings[0]


# ------------------------------------------------------------------------------ collecting


@pytest.mark.parametrize(
    "metrics,dimensions,granularity,limit",
    [
        (
            ["request_count", "cost"],
            ["model", "app"],
            "hour",
            40,
        ),  # time-bucketed rows: concatenated
        (
            ["request_count", "total_tokens", "cost"],
            ["model", "provider"],
            None,
            8,
        ),  # whole-range groups: summed
        (
            ["avg_latency_ms", "cost"],
            ["model"],
            "hour",
            30,
        ),  # a rate with a granularity: concatenated
        (["cost"], ["model", "app"], "day", 8),
    ],  # day buckets cut by hour slices: summed per bucket
)
def test_truncated_answers_are_split_until_complete(
    metrics: list[str], dimensions: list[str], granularity: str | None, limit: int
) -> None:
    query = AnalyticsQuery(
        metrics, dimensions, granularity=granularity, time_range=TWO_DAYS, limit=limit
    )
    calls: list[TimeRange] = []
    result = collect_complete(query, META, server(calls), max_requests=100)
    assert (
        len(result.slices) > 1
        and not result.incomplete
        and result.metadata.row_count == len(result.rows)
    )
    assert canonical(result.rows) == canonical(truth(query))
    assert result.slices[0].start == TWO_DAYS.start and result.slices[-1].end == TWO_DAYS.end
    assert all(a.end == b.start for a, b in zip(result.slices, result.slices[1:]))
    assert len(calls) == 2 * len(result.slices) - 1  # every split cost exactly one extra request


def test_a_complete_first_answer_is_returned_as_is() -> None:
    calls: list[TimeRange] = []
    query = AnalyticsQuery(["cost"], ["model"], time_range=TWO_DAYS)
    result = collect_complete(query, META, server(calls))
    assert (
        calls == [TWO_DAYS]
        and result.slices == (TWO_DAYS,)
        and canonical(result.rows) == canonical(truth(query))
    )


def test_timeouts_are_split_down_to_the_span_the_server_manages() -> None:
    calls: list[TimeRange] = []
    query = AnalyticsQuery(
        ["request_count", "cost"], ["model"], granularity="hour", time_range=TWO_DAYS
    )
    result = collect_complete(query, META, server(calls, timeout_span=timedelta(hours=12)))
    assert [s.span for s in result.slices] == [timedelta(hours=12)] * 4
    assert [c.span.total_seconds() / 3600 for c in calls] == [
        48,
        24,
        12,
        12,
        12,
        12,
    ]  # the 2nd day is split unasked
    assert canonical(result.rows) == canonical(truth(query))
    calls.clear()
    with pytest.raises(
        QueryTimeoutError, match="timed out .* cannot be split further.*smallest slice"
    ):
        collect_complete(query, META, server(calls, timeout_span=timedelta(minutes=30)))
    assert [c.span.total_seconds() / 3600 for c in calls] == [
        48,
        24,
        12,
        6,
        3,
        1,
    ]  # depth first, in time order


def test_rate_metric_without_granularity_is_refused_not_averaged_wrong() -> None:
    calls: list[TimeRange] = []
    query = AnalyticsQuery(["avg_latency_ms"], ["model"], time_range=TWO_DAYS, limit=2)
    with pytest.raises(
        OpenRouterError,
        match="was truncated .* cannot be split further: rate metric.*avg_latency_ms",
    ) as info:
        collect_complete(query, META, server(calls))
    assert len(calls) == 1 and "Nothing incomplete was returned" in str(info.value)


def test_still_truncated_at_min_slice_and_request_budget_are_errors() -> None:
    calls: list[TimeRange] = []
    query = AnalyticsQuery(
        ["cost"], ["model", "app"], granularity="minute", time_range=TWO_DAYS, limit=1
    )
    with pytest.raises(OpenRouterError, match="smallest slice allowed"):
        collect_complete(query, META, server(calls), min_slice=timedelta(hours=12))
    assert [c.span for c in calls] == [
        timedelta(hours=48),
        timedelta(hours=24),
        timedelta(hours=12),
    ]
    calls.clear()
    with pytest.raises(OpenRouterError, match="needs more than max_requests=4 requests"):
        collect_complete(
            AnalyticsQuery(["cost"], ["model"], time_range=TWO_DAYS, limit=1),
            META,
            server(calls),
            max_requests=4,
        )
    assert len(calls) == 4


def test_preconditions_cost_no_request() -> None:
    calls: list[TimeRange] = []
    with pytest.raises(InvalidParameterError, match="needs a time_range"):
        collect_complete(AnalyticsQuery(["cost"]), META, server(calls))
    with pytest.raises(
        InvalidParameterError, match="group_limit=24 is below the 48 'hour' buckets"
    ):
        collect_complete(
            AnalyticsQuery(
                ["cost"], ["model"], granularity="hour", time_range=TWO_DAYS, group_limit=24
            ),
            META,
            server(calls),
        )
    with pytest.raises(InvalidParameterError, match="min_slice"):
        collect_complete(
            AnalyticsQuery(["cost"], time_range=TWO_DAYS),
            META,
            server(calls),
            min_slice=timedelta(0),
        )
    assert calls == []
    ok = AnalyticsQuery(
        ["cost"], ["model"], granularity="hour", time_range=TWO_DAYS, group_limit=48
    )
    assert canonical(collect_complete(ok, META, server(calls)).rows) == canonical(truth(ok))


def test_merged_decimals_stay_exact_beyond_the_default_precision() -> None:
    from decimal import Decimal

    from airflow_provider_openrouter.analytics.split import _add

    big = Decimal("1234567890123456789012345678901234.000000000000001")
    assert _add(big, Decimal("0.000000000000001")) == Decimal(
        "1234567890123456789012345678901234.000000000000002"
    )
    assert _add(Decimal("1E+40"), 1) == Decimal("10000000000000000000000000000000000000001")
    assert _add(3, 4) == 7 and type(_add(3, 4)) is int
    assert _add(None, Decimal("0.1")) == Decimal("0.1")
