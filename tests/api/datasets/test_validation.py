"""validation: every integrity rule has a test that fails without it."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.api.datasets.app_rankings import join_app_pages, parse_app_rankings_page
from airflow_provider_openrouter.api.answers import parse_count
from airflow_provider_openrouter.api.datasets.rankings_daily import parse_rankings_daily
from airflow_provider_openrouter.windows.intervals import Window

DAY1, DAY2 = "2026-05-10", "2026-05-11"
BIG = str(2**53 + 1)
REQUESTED = Window(date(2026, 5, 10), date(2026, 5, 11))


def rankings_payload() -> dict[str, Any]:
    return {
        "data": [
            {"date": DAY1, "model_permaslug": "openai/gpt-4o", "total_tokens": BIG},
            {"date": DAY1, "model_permaslug": "a/tie", "total_tokens": "500"},
            {"date": DAY1, "model_permaslug": "b/tie", "total_tokens": "500"},
            {"date": DAY1, "model_permaslug": "other", "total_tokens": "12345678901234567890"},
            {"date": DAY2, "model_permaslug": "anthropic/claude", "total_tokens": "900", "new_field": 1},
        ],
        "meta": {"as_of": "2026-05-12T02:00:00Z", "start_date": DAY1, "end_date": DAY2, "version": "v1"},
    }


def test_valid_response_is_typed_and_exact() -> None:
    result = parse_rankings_daily(rankings_payload(), REQUESTED)
    assert result.meta.as_of == datetime(2026, 5, 12, 2, tzinfo=timezone.utc)
    assert (result.meta.start_date, result.meta.end_date, result.meta.version) == (date(2026, 5, 10), date(2026, 5, 11), "v1")
    assert result.meta.raw["as_of"] == "2026-05-12T02:00:00Z"
    first = result.rows[0]
    assert first.total_tokens == 2**53 + 1 and type(first.total_tokens) is int
    assert result.rows[3].total_tokens == 12345678901234567890
    assert first.date == date(2026, 5, 10)
    assert len(result.rows_for(date(2026, 5, 11))) == 1
    assert not result.clamped


def test_clamped_window_is_exposed() -> None:
    result = parse_rankings_daily(rankings_payload(), Window(date(2026, 5, 10), date(2026, 5, 12)))
    assert result.clamped


def mutate(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(rankings_payload())
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    "payload,field,row",
    [
        (mutate(("data", 0, "total_tokens"), "12.5"), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), "-5"), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), Decimal("1.5e16")), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), 1.5e16), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), ""), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), "１２"), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), True), "total_tokens", 0),
        (mutate(("data", 1, "model_permaslug"), KeyError), "model_permaslug", 1),
        (mutate(("data", 1, "model_permaslug"), ""), "model_permaslug", 1),
        (mutate(("data", 1, "model_permaslug"), 7), "model_permaslug", 1),
        (mutate(("data", 1, "date"), "2026-05-32"), "date", 1),
        (mutate(("data", 1, "date"), "2026-05-09"), "date", 1),
        (mutate(("data", 4, "date"), DAY1), "model_permaslug", 4),
        (mutate(("data", 2, "model_permaslug"), "a/tie"), "model_permaslug", 2),
        (mutate(("data", 1, "model_permaslug"), "c/tie"), "total_tokens", 2),
        (mutate(("data", 1, "total_tokens"), str(2**60)), "total_tokens", 1),
        (mutate(("data", 0), "not an object"), None, 0),
    ],
)
def test_each_rule_names_field_and_row(payload: dict[str, Any], field: str | None, row: int) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_rankings_daily(payload, REQUESTED)
    assert info.value.row == row
    assert info.value.field == field
    assert "Nothing was written" in str(info.value)


def test_other_must_be_last_within_its_date() -> None:
    payload = rankings_payload()
    payload["data"].insert(4, {"date": DAY1, "model_permaslug": "late/model", "total_tokens": "1"})
    with pytest.raises(InvalidResponseError, match="'other' must be last"):
        parse_rankings_daily(payload, REQUESTED)


def test_dates_must_ascend() -> None:
    payload = rankings_payload()
    payload["data"].append({"date": DAY1, "model_permaslug": "z/model", "total_tokens": "1"})
    with pytest.raises(InvalidResponseError, match="sorted by date"):
        parse_rankings_daily(payload, REQUESTED)


def test_more_than_fifty_models_a_day_is_rejected() -> None:
    rows = [{"date": DAY1, "model_permaslug": f"m/{i:02d}", "total_tokens": str(1000 - i)} for i in range(51)]
    payload = {"data": rows, "meta": rankings_payload()["meta"]}
    with pytest.raises(InvalidResponseError, match="more than 50"):
        parse_rankings_daily(payload, REQUESTED)
    payload["data"] = rows[:50]
    assert len(parse_rankings_daily(payload, REQUESTED).rows) == 50


@pytest.mark.parametrize(
    "meta_change,match",
    [
        ({"as_of": "2026-05-12T02:00:00"}, "timezone"),
        ({"as_of": "yesterday"}, "timezone"),
        ({"start_date": "2026-05-12"}, "ends before it starts"),
        ({"version": None}, "version"),
        ({"end_date": None}, "end_date"),
    ],
)
def test_meta_is_checked(meta_change: dict[str, Any], match: str) -> None:
    payload = rankings_payload()
    payload["meta"].update(meta_change)
    payload["data"] = []
    with pytest.raises(InvalidResponseError, match=match):
        parse_rankings_daily(payload, REQUESTED)


@pytest.mark.parametrize("payload", [[], {"data": []}, {"meta": {}}, {"data": {}, "meta": {}}, "x"])
def test_envelope_is_checked(payload: Any) -> None:
    with pytest.raises(InvalidResponseError):
        parse_rankings_daily(payload, REQUESTED)


def test_parse_count_accepts_exact_integers_only() -> None:
    assert parse_count("0", field="f") == 0
    assert parse_count(str(10**30), field="f") == 10**30
    assert parse_count(42, field="f") == 42
    for bad in ("1e3", " 1", "0x10", -1, 1.0, None, False):
        with pytest.raises(InvalidResponseError):
            parse_count(bad, field="f")


def app_page(offset: int, n: int, *, start_id: int = 1000) -> dict[str, Any]:
    return {
        "data": [
            {"app_id": start_id + i, "app_name": f'App "{i}", ok 🚀\nline', "rank": offset + i + 1,
             "total_requests": 10 * (n - i), "total_tokens": str(10**18 - i)}
            for i in range(n)
        ],
        "meta": {"as_of": "2026-05-12T02:00:00Z", "start_date": DAY1, "end_date": DAY2, "version": "v1"},
    }


def test_app_pages_join_with_absolute_ranks() -> None:
    first = parse_app_rankings_page(app_page(0, 100), 0)
    second = parse_app_rankings_page(app_page(100, 100, start_id=5000), 100)
    joined = join_app_pages([first, second], REQUESTED, capped=True)
    assert [r.rank for r in joined.rows] == list(range(1, 201))
    assert joined.rows[0].app_name.endswith("\nline")
    assert joined.rows[0].total_tokens == 10**18
    assert joined.capped


def test_app_rank_gap_is_rejected() -> None:
    with pytest.raises(InvalidResponseError, match="rank 1 where 101 was expected") as info:
        parse_app_rankings_page(app_page(0, 3), 100)
    assert info.value.field == "rank"


def test_app_duplicate_across_pages_is_rejected() -> None:
    first = parse_app_rankings_page(app_page(0, 2), 0)
    second = parse_app_rankings_page(app_page(2, 2), 2)
    with pytest.raises(InvalidResponseError, match="appears twice"):
        join_app_pages([first, second], REQUESTED, capped=False)


def test_app_pages_with_different_windows_are_rejected() -> None:
    first = parse_app_rankings_page(app_page(0, 2), 0)
    other = app_page(2, 2, start_id=9000)
    other["meta"]["end_date"] = DAY1
    with pytest.raises(InvalidResponseError, match="different windows"):
        join_app_pages([first, parse_app_rankings_page(other, 2)], REQUESTED, capped=False)


@pytest.mark.parametrize("field,value", [("app_id", "12"), ("rank", 1.0), ("total_requests", -1), ("app_name", None)])
def test_app_fields_are_typed(field: str, value: Any) -> None:
    page = app_page(0, 2)
    page["data"][0][field] = value
    with pytest.raises(InvalidResponseError) as info:
        parse_app_rankings_page(page, 0)
    assert info.value.field == field and info.value.row == 0
