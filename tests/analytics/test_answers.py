"""Parsing the analytics answers: meta variants, the query envelope, exact numbers, located errors."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.analytics import answers
from airflow_provider_openrouter.analytics.query import (
    AnalyticsQuery,
    parse_analytics_meta,
    parse_query_response,
)
from airflow_provider_openrouter.exceptions import InvalidResponseError

QUERY = AnalyticsQuery(["request_count", "cost"], ["model"], granularity="day")


def answer(rows: list[Any], **metadata: Any) -> dict[str, Any]:
    return {
        "data": {
            "data": rows,
            "metadata": {
                "query_time_ms": 12,
                "row_count": len(rows),
                "truncated": False,
                **metadata,
            },
        }
    }


def decoded(text: str) -> Any:
    """As the client decodes bodies: floats as Decimal, ints as int."""
    return json.loads(text, parse_float=Decimal)


def test_meta_objects_strings_and_missing_is_rate() -> None:
    meta = parse_analytics_meta(
        {
            "data": {
                "metrics": [
                    {
                        "name": "cost",
                        "display_label": "Cost",
                        "display_format": "currency",
                        "is_rate": False,
                    },
                    {"name": "p50", "display_label": "P50"},
                    "request_count",
                ],
                "dimensions": ["model", {"name": "app", "display_label": "App"}],
                "granularities": ["day", {"name": "hour", "display_label": "Hour"}],
                "operators": [
                    {"name": "eq", "value_type": "scalar"},
                    {"name": "in"},
                    "not_in",
                    {"name": "between", "value_type": "range"},
                ],
            }
        }
    )
    assert meta.metric("cost") is not None and meta.metric("cost").display_format == "currency"  # type: ignore[union-attr]
    assert not meta.metric("cost").is_rate  # type: ignore[union-attr]
    assert meta.metric("p50").is_rate and meta.metric("request_count").is_rate  # type: ignore[union-attr]  # unknown: never summed
    assert meta.dimension_names == ("model", "app") and meta.granularities == ("day", "hour")
    assert [(o.name, o.value_type) for o in meta.operators] == [
        ("eq", "scalar"),
        ("in", "array"),
        ("not_in", "array"),
        ("between", "scalar"),
    ]
    assert meta.metric("nope") is None and meta.raw["granularities"][0] == "day"


@pytest.mark.parametrize(
    "payload,field",
    [
        ([], "data"),
        ({"data": []}, "data"),
        (
            {
                "data": {
                    "metrics": [],
                    "dimensions": ["a"],
                    "granularities": ["day"],
                    "operators": ["eq"],
                }
            },
            "data.metrics",
        ),
        (
            {
                "data": {
                    "metrics": [{"label": "x"}],
                    "dimensions": ["a"],
                    "granularities": ["day"],
                    "operators": ["eq"],
                }
            },
            "data.metrics",
        ),
        (
            {"data": {"metrics": ["cost"], "granularities": ["day"], "operators": ["eq"]}},
            "data.dimensions",
        ),
    ],
)
def test_bad_meta_names_the_field(payload: Any, field: str) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_analytics_meta(payload)
    assert info.value.field == field and "analytics response" in str(info.value)


def test_rows_keep_exact_numbers_and_metadata() -> None:
    text = (
        '{"data": {"data": [{"date": "2025-05-01T00:00:00Z", "model": "OpenAI: GPT-4o", "request_count": 9007199254740993, '
        '"cost": 12345.678901234567891}], "metadata": {"query_time_ms": 1.5, "row_count": 1, "truncated": false}, '
        '"cachedAt": 1746057600000, "warnings": ["api_key_hash \'x\' could not be resolved"]}}'
    )
    result = parse_query_response(decoded(text), QUERY)
    row = result.rows[0]
    assert row["request_count"] == 2**53 + 1 and type(row["request_count"]) is int
    assert (
        row["cost"] == Decimal("12345.678901234567891")
        and str(row["cost"]) == "12345.678901234567891"
    )
    assert (
        result.metadata.query_time_ms == Decimal("1.5")
        and result.metadata.cached_at == 1746057600000
    )
    assert (
        result.metadata.warnings == ("api_key_hash 'x' could not be resolved",)
        and not result.incomplete
    )
    assert result.query is QUERY and result.slices == ()


def test_truncation_and_row_count_above_rows_are_incomplete() -> None:
    rows = [{"model": "m", "request_count": 1, "cost": 0}]
    assert parse_query_response(answer(rows, truncated=True)).incomplete
    assert parse_query_response(
        answer(rows, row_count=5)
    ).incomplete  # a server counting rows before the cut
    assert not parse_query_response(answer(rows)).incomplete
    assert parse_query_response(answer([])).rows == []


@pytest.mark.parametrize(
    "payload,field,row",
    [
        ({"data": []}, "data", None),
        ({"data": {"metadata": {}}}, "data.data", None),
        ({"data": {"data": []}}, "data.metadata", None),
        (answer([], truncated="no"), "metadata.truncated", None),
        (answer([], row_count=-1), "metadata.row_count", None),
        (answer([], row_count=True), "metadata.row_count", None),
        (answer([], query_time_ms="fast"), "metadata.query_time_ms", None),
        (answer([], query_time_ms=0.5), "metadata.query_time_ms", None),
        (
            answer([{"model": "m", "request_count": 1, "cost": 1}], row_count=0),
            "metadata.row_count",
            None,
        ),
        ({"data": {**answer([])["data"], "warnings": "careful"}}, "warnings", None),
        ({"data": {**answer([])["data"], "cachedAt": True}}, "cachedAt", None),
        (answer([{"model": "m", "request_count": 1, "cost": 1}, ["m", 1, 1]]), None, 1),
        (answer([{"model": "m", "request_count": 1, "cost": 0.1}]), "cost", 0),
        (answer([{"model": "m", "request_count": 1, "cost": Decimal("NaN")}]), "cost", 0),
        (answer([{"model": {"id": "m"}, "request_count": 1, "cost": 1}]), "model", 0),
        (answer([{"model": "m", "request_count": 1}]), "cost", 0),
        (answer([{"request_count": 1, "cost": 1}]), "model", 0),
        (answer([{"model": "m", "request_count": "1", "cost": 1}]), "request_count", 0),
        (answer([{"model": "m", "request_count": True, "cost": 1}]), "request_count", 0),
    ],
)
def test_bad_answers_name_the_field_and_row(
    payload: Any, field: str | None, row: int | None
) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_query_response(payload, QUERY)
    assert (info.value.field, info.value.row) == (field, row)
    assert "Nothing was written" in str(info.value)


def test_without_a_query_rows_are_free_form_but_still_scalar_and_exact() -> None:
    result = parse_query_response(
        answer([{"anything": "x", "n": None, "v": Decimal("0.000123456789")}])
    )
    assert result.rows == [{"anything": "x", "n": None, "v": Decimal("0.000123456789")}]
    with pytest.raises(InvalidResponseError, match="binary float"):
        parse_query_response(answer([{"v": 0.1}]))


class _Row(dict):
    pass


@pytest.mark.parametrize(
    "value,field",
    [
        (0.1, "cost"),
        (1.0, "cost"),
        (Decimal("NaN"), "cost"),
        (Decimal("Infinity"), "cost"),
        (Decimal("-Infinity"), "cost"),
        ([1], "cost"),
        ({"v": 1}, "cost"),
        (b"1", "cost"),
        (True, "cost"),
        ("1", "cost"),
        (0.5, "model"),
        ([], "model"),
    ],
    ids=repr,
)
def test_every_value_rule_is_kept_on_the_fast_path(value: Any, field: str) -> None:
    row = {"model": "m", "request_count": 1, "cost": Decimal("0.5")}
    row[field] = value
    rows = [{"model": "m", "request_count": 2, "cost": 1}, row]
    assert answers._plain_rows(rows, QUERY) is None  # the whole-answer pass declines
    with pytest.raises(InvalidResponseError) as info:
        parse_query_response(answer(rows), QUERY)
    assert (info.value.field, info.value.row) == (field, 1)


@pytest.mark.parametrize("missing", ["model", "request_count", "cost"])
def test_a_requested_field_missing_from_one_row_is_found_on_the_fast_path(missing: str) -> None:
    rows = [{"model": "m", "request_count": 2, "cost": 1} for _ in range(3)]
    del rows[2][missing]
    assert answers._plain_rows(rows, QUERY) is None
    assert answers._plain_rows(rows, None) is not None  # free-form without a query
    with pytest.raises(InvalidResponseError) as info:
        parse_query_response(answer(rows), QUERY)
    assert (info.value.field, info.value.row) == (missing, 2)


def test_the_fast_path_and_the_row_by_row_checks_give_the_same_rows() -> None:
    rows = [
        {"model": f"m{i}", "request_count": i, "cost": Decimal(i) / 7, "note": None, "ok": True}
        for i in range(50)
    ]
    fast = answers._plain_rows(rows, QUERY)
    assert fast is not None and fast == rows and fast[0] is not rows[0]
    assert fast == [answers._check_row(dict(r), i, QUERY) for i, r in enumerate(rows)]


def test_plain_rows_subclasses_and_booleans_are_read_alike() -> None:
    rows = [
        {"model": "m", "request_count": 1, "cost": Decimal("0.5"), "flag": True, "note": None},
        _Row(model="n", request_count=2, cost=3, flag=False, note="x"),
    ]
    result = parse_query_response(answer(rows), QUERY)
    assert result.rows == [dict(r) for r in rows] and all(type(r) is dict for r in result.rows)
    assert result.rows[0] is not rows[0]  # a copy: the answer's dicts are not handed out
