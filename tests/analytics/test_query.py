"""The analytics query model: shape checks at construction, names checked against the meta answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.analytics.query import (
    AnalyticsQuery,
    Filter,
    OrderBy,
    TimeRange,
    parse_analytics_meta,
    validate_query,
)
from airflow_provider_openrouter.exceptions import InvalidParameterError

META = parse_analytics_meta(
    {
        "data": {
            "metrics": [
                {
                    "name": "request_count",
                    "display_label": "Requests",
                    "display_format": "number",
                    "is_rate": False,
                },
                {
                    "name": "cost",
                    "display_label": "Cost",
                    "display_format": "currency",
                    "is_rate": False,
                },
                {
                    "name": "avg_latency_ms",
                    "display_label": "Latency",
                    "display_format": "latency",
                    "is_rate": True,
                },
            ],
            "dimensions": [
                {"name": "model", "display_label": "Model"},
                {"name": "provider", "display_label": "Provider"},
                {"name": "app", "display_label": "App"},
            ],
            "granularities": [
                {"name": g, "display_label": g} for g in ("minute", "hour", "day", "week", "month")
            ],
            "operators": [
                {"name": "eq", "value_type": "scalar"},
                {"name": "in", "value_type": "array"},
                {"name": "not_in", "value_type": "array"},
                {"name": "gt", "value_type": "scalar"},
            ],
        }
    }
)
START = datetime(2025, 5, 1, tzinfo=timezone.utc)


def test_a_full_query_serialises_to_the_documented_body() -> None:
    query = AnalyticsQuery(
        metrics=["request_count", "cost"],
        dimensions=["model", "app"],
        filters=[
            {"field": "model", "operator": "in", "value": ["openai/gpt-4o", "x/y"]},
            ("app", "eq", 1001),
            {"field": "provider", "operator": "eq", "value": "OpenAI", "include_unset": True},
        ],
        granularity="day",
        time_range=(START, START + timedelta(days=7)),
        limit=500,
        group_limit=10,
        order_by={"field": "cost", "direction": "asc"},
    )
    validate_query(query, META)
    assert query.to_body() == {
        "metrics": ["request_count", "cost"],
        "dimensions": ["model", "app"],
        "filters": [
            {"field": "model", "operator": "in", "value": ["openai/gpt-4o", "x/y"]},
            {"field": "app", "operator": "eq", "value": 1001},
            {"field": "provider", "operator": "eq", "value": "OpenAI", "include_unset": True},
        ],
        "granularity": "day",
        "time_range": {"start": "2025-05-01T00:00:00Z", "end": "2025-05-08T00:00:00Z"},
        "limit": 500,
        "group_limit": 10,
        "order_by": {"field": "cost", "direction": "asc"},
    }
    assert AnalyticsQuery(["cost"]).to_body() == {"metrics": ["cost"]}
    assert hash(query) == hash(
        AnalyticsQuery(**{f: getattr(query, f) for f in query.__dataclass_fields__})
    )


def test_time_bounds_are_normalised_to_utc_whole_seconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    window = TimeRange(datetime(2025, 5, 1, 2, 0, tzinfo=plus_two), "2025-05-02T00:00:00+00:00")
    assert window.start == START and window.start.tzinfo is timezone.utc
    assert window.to_json() == {"start": "2025-05-01T00:00:00Z", "end": "2025-05-02T00:00:00Z"}
    assert TimeRange.coerce(
        {"start": "2025-05-01T00:00:00Z", "end": "2025-05-01T00:00:01Z"}
    ).span == timedelta(seconds=1)
    import pendulum

    assert TimeRange(
        pendulum.datetime(2025, 5, 1, tz="UTC"), pendulum.datetime(2025, 5, 2, tz="Europe/Paris")
    ).end == datetime(2025, 5, 1, 22, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "start,end,match",
    [
        ("2025-05-01T00:00Z", "2025-05-02T00:00:00Z", "seconds included"),
        ("2025-05-01", "2025-05-02T00:00:00Z", "full timestamp"),
        (datetime(2025, 5, 1), START, "no timezone"),
        (START.replace(microsecond=5), START + timedelta(1), "sub-second"),
        (START, START, "not after its start"),
        (START + timedelta(hours=1), START, "not after its start"),
        (20250501, START, "aware datetime"),
    ],
)
def test_bad_time_bounds_are_named(start: Any, end: Any, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        AnalyticsQuery(["cost"], time_range=(start, end))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"metrics": []}, "at least one metric"),
        ({"metrics": "cost"}, "list of names"),
        ({"metrics": ["cost", "cost"]}, "cost more than once"),
        ({"metrics": ["cost", 3]}, "got 3"),
        ({"dimensions": ["model", "app", "provider"]}, "3 dimensions .* at most 2"),
        (
            {"filters": [("model", "eq", f"m{i}") for i in range(21)]},
            "21 filters; a query takes at most 20",
        ),
        ({"filters": {"field": "model"}}, "list of filters"),
        ({"filters": [{"field": "model", "value": 1}]}, "must be"),
        ({"filters": [("model", "eq", 1.5)]}, "value 1.5"),
        ({"filters": [("model", "in", [])]}, "non-empty list"),
        ({"filters": [("model", "eq", True)]}, "value True"),
        ({"granularity": ""}, "granularity=''"),
        ({"limit": 0}, "limit=0"),
        ({"limit": True}, "limit=True"),
        ({"group_limit": -1}, "group_limit=-1"),
        ({"order_by": {"field": "cost", "direction": "up"}}, "direction 'up'"),
        ({"order_by": "cost"}, "order_by='cost'"),
        ({"time_range": [START]}, "pair"),
    ],
)
def test_shape_errors_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        AnalyticsQuery(**{"metrics": ["cost"], **kwargs})


def test_twenty_filters_and_two_dimensions_are_fine() -> None:
    query = AnalyticsQuery(
        ["cost"], ["model", "app"], [("model", "eq", f"m{i}") for i in range(20)]
    )
    validate_query(query, META)
    assert len(query.to_body()["filters"]) == 20


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"metrics": ["cost", "tokens"]},
            "metric 'tokens' is not available; valid metrics: request_count, cost, avg_latency_ms",
        ),
        (
            {"dimensions": ["country"]},
            "dimension 'country' is not available; valid dimensions: model, provider, app",
        ),
        (
            {"granularity": "year"},
            "granularity 'year' is not available; valid granularities: minute, hour, day, week, month",
        ),
        (
            {"filters": [("country", "eq", "FR")]},
            r"filter 0 .*field 'country' is not a dimension; valid fields: model, provider, app",
        ),
        (
            {"filters": [("model", "eq", "a"), ("model", "like", "x")]},
            r"filter 1 .*operator 'like' is not available; valid operators: eq, in, not_in, gt",
        ),
        ({"filters": [("model", "in", "a")]}, "operator 'in' takes a list of values"),
        ({"filters": [("app", "not_in", 1001)]}, "operator 'not_in' takes a list"),
        ({"filters": [("model", "eq", ["a", "b"])]}, "takes one value, not a list; use 'in'"),
        (
            {"order_by": ("provider", "asc")},
            "order_by field 'provider' is not a metric, a requested dimension or 'date'",
        ),
    ],
)
def test_names_are_checked_against_meta_with_the_valid_choices(
    kwargs: dict[str, Any], match: str
) -> None:
    query = AnalyticsQuery(**{"metrics": ["cost"], **kwargs})
    with pytest.raises(InvalidParameterError, match=match):
        validate_query(query, META)


def test_order_by_any_metric_a_requested_dimension_or_date() -> None:
    for field in ("avg_latency_ms", "model", "date"):
        validate_query(AnalyticsQuery(["cost"], ["model"], order_by=OrderBy(field)), META)


def test_value_objects_coerce_and_stay_hashable() -> None:
    assert Filter.coerce(["model", "in", ["a"]]) == Filter("model", "in", ("a",))
    assert OrderBy.coerce({"field": "cost"}).direction == "desc"
    assert AnalyticsQuery(["cost"]).with_time_range(
        TimeRange(START, START + timedelta(hours=1))
    ).time_range.span == timedelta(hours=1)
    assert (
        "time_range=2025-05-01T00:00:00Z..2025-05-01T01:00:00Z"
        in AnalyticsQuery(["cost"], time_range=(START, START + timedelta(hours=1))).describe()
    )
