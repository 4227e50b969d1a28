"""Parse-time validation, template fields and outlets of AnalyticsQueryOperator, and its pure helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import Asset

from airflow_provider_openrouter.analytics.query import TimeRange
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    InvalidResponseError,
    WindowNotCompleteError,
)
from airflow_provider_openrouter.get_provider_info import get_provider_info
from airflow_provider_openrouter.operators.analytics import (
    AnalyticsQueryOperator,
    check_rows_in_day,
    exact_jsonl_bytes,
    interval_days,
)

from .conftest import DAG_TEMPLATE, SCHEDULES

LAKE = "s3://lake/openrouter/"
OK: dict[str, Any] = {"task_id": "q", "output_uri": LAKE, "metrics": ["cost"]}

BAD = [
    (
        {"granularity": "week"},
        "granularity='week' cannot be written to daily partitions: its buckets span several days",
    ),
    ({"granularity": "month"}, "granularity='month' cannot be written to daily partitions"),
    (
        {"granularity": "year"},
        "granularity='year' cannot be written to daily partitions: this operator partitions by UTC day",
    ),
    ({"metrics": []}, "metrics must name at least one metric"),
    ({"metrics": "cost"}, "metrics must be a list of names, not 'cost'"),
    (
        {"dimensions": ["model", "app", "provider"]},
        "3 dimensions (model, app, provider); a query takes at most 2",
    ),
    (
        {"filters": [{"field": "model", "operator": "eq", "value": "x"}] * 21},
        "21 filters; a query takes at most 20",
    ),
    (
        {"filters": [{"field": "model", "op": "eq", "value": "x"}]},
        "must be {'field': ..., 'operator': ..., 'value': ...}",
    ),
    (
        {"order_by": {"field": "cost", "direction": "up"}},
        "order_by direction 'up' must be one of asc, desc",
    ),
    ({"limit": 0}, "limit=0 must be a positive integer"),
    (
        {"dimensions": ["model"], "granularity": "hour", "group_limit": 5},
        "group_limit=5 is below the 24 'hour' buckets of 2025-01-01T00:00:00Z..2025-01-02T00:00:00Z",
    ),
    (
        {"min_slice": timedelta(milliseconds=500)},
        "min_slice=datetime.timedelta(microseconds=500000) must be a timedelta of whole seconds",
    ),
    ({"max_requests": 0}, "max_requests=0 must be a positive integer"),
    ({"format": "parquet"}, "format='parquet' is not supported for analytics; use 'jsonl'"),
    ({"query_name": "by/model"}, "query_name='by/model' must be 1-128 letters, digits"),
    (
        {"output_uri": "lake/openrouter"},
        "output_uri='lake/openrouter' has no scheme; use file:///absolute/path",
    ),
    (
        {"openrouter_conn_id": ""},
        "openrouter_conn_id must name an Airflow connection of type openrouter",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_bad_query_fails_when_the_operator_is_built(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        AnalyticsQueryOperator(**{**OK, **change})
    assert message in str(info.value) and str(info.value).startswith("Task 'q': ")


def test_a_bad_query_is_a_dag_import_error(
    write_dag: Callable[[str, str], Path], dag_import_error: Callable[[str], str]
) -> None:
    tasks = '    AnalyticsQueryOperator(task_id="weekly", output_uri=LAKE, metrics=["cost"], granularity="week")'
    write_dag(
        "parse_analytics",
        DAG_TEMPLATE.format(
            lake=LAKE,
            conn="c",
            dag_id="parse_analytics",
            schedule=SCHEDULES["daily"],
            params={},
            tasks=tasks,
        ),
    )
    error = dag_import_error("parse_analytics.py")
    assert (
        "InvalidParameterError" in error
        and "Task 'weekly': granularity='week' cannot be written to daily partitions" in error
    )


def test_outlets_template_fields_defaults_and_registration() -> None:
    op = AnalyticsQueryOperator(
        task_id="tokens", output_uri=LAKE, metrics=["total_tokens"], dimensions=["model"]
    )
    assert op.outlets == [Asset("s3://lake/openrouter/analytics/tokens")]
    assert (op.query_name, op.granularity, op.format, op.openrouter_conn_id) == (
        "tokens",
        "day",
        "jsonl",
        "openrouter_default",
    )
    assert set(op.template_fields) == {"output_uri", "output_conn_id", "filters"}
    named = AnalyticsQueryOperator(
        task_id="t",
        output_uri=LAKE,
        metrics=["cost"],
        query_name="spend",
        granularity=None,
        outlets=[Asset("s3://other/x")],
    )
    assert named.outlets == [Asset("s3://other/x"), Asset("s3://lake/openrouter/analytics/spend")]
    assert named.build_query().to_body() == {"metrics": ["cost"]}
    templated = AnalyticsQueryOperator(
        task_id="t",
        output_uri="{{ var.value.lake }}",
        metrics=["cost"],
        filters=[{"field": "app", "operator": "eq", "value": "{{ params.app }}"}],
    )
    assert templated.outlets == []  # the URI is only known at run time
    modules = [m for group in get_provider_info()["operators"] for m in group["python-modules"]]
    assert "airflow_provider_openrouter.operators.analytics" in modules


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_run_days_follow_the_rankings_rules_and_refuse_what_is_not_whole_past_days() -> None:
    op = AnalyticsQueryOperator(**OK)
    window = op.resolve_days(
        {"data_interval_start": utc(2025, 7, 1), "data_interval_end": utc(2025, 7, 8)}
    )  # type: ignore[arg-type]
    assert (window.start.isoformat(), window.end.isoformat()) == ("2025-07-01", "2025-07-07")
    zero = interval_days(utc(2025, 7, 5), utc(2025, 7, 5))
    assert (zero.start.isoformat(), zero.end.isoformat()) == ("2025-07-04", "2025-07-04")
    early = interval_days(
        utc(2024, 12, 30), utc(2025, 1, 2)
    )  # no dataset floor for the organisation's usage
    assert (early.start.isoformat(), early.days, early.clamped_from) == ("2024-12-30", 3, None)
    with pytest.raises(InvalidParameterError, match="is not at 00:00 UTC"):
        op.resolve_days(
            {"data_interval_start": utc(2025, 7, 1, 10), "data_interval_end": utc(2025, 7, 1, 11)}
        )  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="no data interval"):
        op.resolve_days({"data_interval_start": None, "data_interval_end": None})  # type: ignore[arg-type]
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    with pytest.raises(
        WindowNotCompleteError, match="their usage is not complete yet. Nothing was written"
    ):
        op.resolve_days(
            {"data_interval_start": today, "data_interval_end": today + timedelta(days=1)}
        )  # type: ignore[arg-type]
    assert (
        op.resolve_days(
            {"data_interval_start": today - timedelta(days=1), "data_interval_end": today}
        ).days
        == 1
    )  # type: ignore[arg-type]


def test_jsonl_keeps_every_decimal_digit_as_a_json_number() -> None:
    records = [
        {
            "date": "2025-07-04T00:00:00Z",
            "app": 'Café ☕ "Notes", v2',
            "cost": Decimal("24.959301932694378"),
            "n": 2**70,
        },
        {
            "cost": Decimal("0.000000000000000100"),
            "zero": Decimal("0E-7"),
            "big": Decimal("1E+3"),
            "x": None,
            "ok": True,
        },
    ]
    data = exact_jsonl_bytes(records)
    assert (
        data
        == (
            '{"date":"2025-07-04T00:00:00Z","app":"Café ☕ \\"Notes\\", v2","cost":24.959301932694378,'
            '"n":1180591620717411303424}\n'
            '{"cost":0.000000000000000100,"zero":0.0000000,"big":1000,"x":null,"ok":true}\n'
        ).encode()
    )
    parsed = [json.loads(line, parse_float=Decimal) for line in data.splitlines()]
    assert (
        parsed[0]["cost"] == records[0]["cost"]
        and parsed[0]["n"] == 2**70
        and parsed[1]["cost"] == Decimal("1E-16")
    )
    assert (
        exact_jsonl_bytes([{"name": "bad \ud800 surrogate"}])
        == b'{"name":"bad \\ud800 surrogate"}\n'
    )
    assert exact_jsonl_bytes([]) == b""
    with pytest.raises(InvalidResponseError, match="cannot be written as an exact JSON scalar"):
        exact_jsonl_bytes([{"cost": Decimal("NaN")}])
    with pytest.raises(InvalidResponseError):
        exact_jsonl_bytes([{"cost": 0.1}])


def test_rows_outside_their_day_are_refused() -> None:
    day = TimeRange(utc(2025, 7, 4), utc(2025, 7, 5))
    check_rows_in_day(
        [
            {"date": "2025-07-04T00:00:00Z"},
            {"date": "2025-07-04T23:59:00Z"},
            {"model": "m"},
            {"date": "Q3"},
        ],
        day,
    )
    with pytest.raises(
        InvalidResponseError, match="row 1 has date='2025-07-05T00:00:00Z', outside the time range"
    ):
        check_rows_in_day([{"date": "2025-07-04T00:00:00Z"}, {"date": "2025-07-05T00:00:00Z"}], day)
    with pytest.raises(InvalidResponseError, match="row 0"):
        check_rows_in_day([{"date": "2025-07-03"}], day)


def test_a_mapped_task_without_its_own_query_name_is_refused_before_any_request() -> None:
    op = AnalyticsQueryOperator(**OK)
    with pytest.raises(
        InvalidParameterError,
        match="is mapped and every map index would write analytics/q/: give each one its own query_name",
    ):
        op.execute({"ti": SimpleNamespace(map_index=0)})  # type: ignore[arg-type]
    named = AnalyticsQueryOperator(**OK, query_name="spend_app_1001")
    with pytest.raises(
        InvalidParameterError, match="no data interval"
    ):  # past the check, to the run's days
        named.execute(
            {
                "ti": SimpleNamespace(map_index=0),
                "data_interval_start": None,
                "data_interval_end": None,
            }
        )  # type: ignore[arg-type]
