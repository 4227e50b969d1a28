"""session_cost: parameters, answer rules, joining pages, cadence and layout (pure, no I/O)."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.api.datasets import session_cost as sc
from airflow_provider_openrouter.exceptions import InvalidParameterError, InvalidResponseError
from airflow_provider_openrouter.windows.intervals import Window

META = {
    "as_of": "2026-05-12T02:00:00.000Z",
    "version": "v1",
    "window_days": 30,
    "window_end_date": "2026-05-11",
}
EXACT = "0.12345678901234567890123"


def payload(*costs: str, meta: dict[str, Any] | None = None) -> Any:
    rows = [
        {
            "app_name": "Hermes Agent",
            "app_slug": "hermes-agent",
            "median_session_cost_usd": cost,
            "model_permaslug": f"anthropic/claude-{i}",
            "turn_range": sc.TURN_RANGES[i % 4],
        }
        for i, cost in enumerate(costs)
    ]
    text = json.dumps({"data": rows, "meta": meta or META}).replace('"@', "").replace('@"', "")
    return json.loads(text, parse_float=Decimal)  # as the client decodes answers


def numbers(*costs: str) -> list[str]:
    return [f"@{c}@" for c in costs]  # written as JSON numbers, not strings


def test_cells_keep_every_digit_and_meta_is_typed() -> None:
    meta, rows = sc.parse_page(payload(*numbers(EXACT, "1.74", "2")), 0)
    assert [r.median_session_cost_usd for r in rows] == [
        Decimal(EXACT),
        Decimal("1.74"),
        Decimal(2),
    ]
    assert str(rows[0].median_session_cost_usd) == EXACT
    assert meta.as_of.isoformat() == "2026-05-12T02:00:00+00:00" and meta.window_days == 30
    assert meta.window == Window(date(2026, 4, 12), date(2026, 5, 11)) and meta.published
    assert list(rows[0].to_record()) == [name for name, _ in sc.COLUMNS]


def test_no_snapshot_published() -> None:
    meta, rows = sc.parse_page(
        payload(meta={**META, "window_days": None, "window_end_date": None}), 0
    )
    assert rows == [] and not meta.published and meta.window is None
    with pytest.raises(InvalidResponseError, match="no snapshot is published"):
        sc.parse_page(
            payload(*numbers("1.5"), meta={**META, "window_days": None, "window_end_date": None}), 0
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["data"][0].update(median_session_cost_usd=1.5), "binary float"),
        (lambda p: p["data"][0].update(median_session_cost_usd="1.5"), "not a JSON number"),
        (lambda p: p["data"][0].update(median_session_cost_usd=Decimal("-1")), "non-negative"),
        (lambda p: p["data"][0].update(median_session_cost_usd=True), "not a JSON number"),
        (
            lambda p: p["data"][0].pop("median_session_cost_usd"),
            "missing required field 'median_session_cost_usd'",
        ),
        (lambda p: p["data"][0].update(turn_range="3-turns"), "turn_range '3-turns' is not one of"),
        (lambda p: p["data"][0].update(app_slug=7), "has type int"),
        (lambda p: p["data"][0].update(model_permaslug=""), "empty app_slug or model_permaslug"),
        (lambda p: p["meta"].update(window_days=None), "both must be null"),
        (lambda p: p["meta"].update(window_days=0), "not a positive whole number"),
        (
            lambda p: p["meta"].update(window_end_date="2026-05-12"),
            "not before the response's as_of",
        ),
        (lambda p: p["meta"].update(window_end_date="11/05/2026"), "not a YYYY-MM-DD date"),
        (lambda p: p["meta"].pop("window_end_date"), "missing required field 'window_end_date'"),
        (lambda p: p["meta"].update(as_of="2026-05-12T02:00:00"), "with a timezone"),
        (lambda p: p.update(data={}), "has type dict"),
    ],
)
def test_broken_answers_are_refused(change: Any, message: str) -> None:
    page = payload(*numbers("1.5", "2.5"))
    change(page)
    with pytest.raises(InvalidResponseError, match=message):
        sc.parse_page(page, 0)


def test_cells_outside_the_filters_are_refused() -> None:
    page = payload(*numbers("1.5"))
    with pytest.raises(InvalidResponseError, match="in an answer filtered on 'cline'"):
        sc.parse_page(page, 0, app_slug="cline")
    with pytest.raises(InvalidResponseError, match="filtered on '50-plus-turns'"):
        sc.parse_page(page, 0, turn_range="50-plus-turns")
    assert (
        len(
            sc.parse_page(
                page, 0, app_slug="hermes-agent", model="anthropic/claude-0", turn_range="1-turn"
            )[1]
        )
        == 1
    )


def test_pages_of_different_snapshots_and_duplicate_cells_are_refused() -> None:
    first = sc.parse_page(payload(*numbers("1.5", "2.5")), 0)
    later = sc.parse_page(
        payload(
            *numbers("3.5"),
            meta={**META, "as_of": "2026-05-19T02:00:00Z", "window_end_date": "2026-05-18"},
        ),
        500,
    )
    with pytest.raises(
        InvalidResponseError, match=r"page 2 comes from another snapshot .* ending 2026-05-18"
    ):
        sc.join_pages([first, later], capped=False, truncated=False)
    same_snapshot_later_as_of = sc.parse_page(
        payload(*numbers("1.5"), meta={**META, "as_of": "2026-05-12T02:00:05Z"}), 500
    )
    with pytest.raises(
        InvalidResponseError,
        match=r"cell \(app_slug='hermes-agent', model='anthropic/claude-0', turn_range='1-turn'\) appears twice",
    ):
        sc.join_pages([first, same_snapshot_later_as_of], capped=False, truncated=False)
    other = copy.deepcopy(payload(*numbers("9")))
    other["data"][0]["model_permaslug"] = "openai/gpt-5"
    joined = sc.join_pages([first, sc.parse_page(other, 500)], capped=False, truncated=True)
    assert (
        len(joined.rows) == 3 and not joined.complete
    )  # as_of may differ between pages of one snapshot


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"turn_range": "10-50-turns"}, "turn_range='10-50-turns' is not supported"),
        ({"app_slug": "Hermes Agent"}, "not a harness slug"),
        ({"app_slug": ""}, "not a harness slug"),
        ({"app_slug": "all"}, "app_slug='all' is reserved: partition paths say app_slug=all"),
        ({"model": "gpt-5"}, "not a model permaslug"),
        ({"model": "openai/gpt 5"}, "not a model permaslug"),
        ({"max_cells": 0}, "max_cells=0 must be an integer from 1 to 5500"),
        ({"max_cells": 5501}, "from 1 to 5500"),
        ({"max_cells": True}, "from 1 to 5500"),
    ],
)
def test_bad_parameters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        sc.validate_params(**kwargs)


def test_paging_plan_and_params() -> None:
    assert sc.pages(1) == [(0, 1)]
    assert sc.pages(1200) == [(0, 500), (500, 500), (1000, 200)]
    assert sc.pages(sc.CEILING)[-1] == (5000, 500) and len(sc.pages(sc.CEILING)) == 11
    assert sc.page_params(
        app_slug=None, model="openai/gpt-5", turn_range=None, offset=500, limit=500
    ) == {"model": "openai/gpt-5", "limit": 500, "offset": 500}


def test_weekly_cadence() -> None:
    assert sc.next_snapshot_end(date(2026, 5, 11)) == date(2026, 5, 18)
    assert sc.due_snapshot_end(date(2026, 5, 11), date(2026, 5, 17)) == date(2026, 5, 11)
    assert sc.due_snapshot_end(date(2026, 5, 11), date(2026, 5, 18)) == date(2026, 5, 18)
    assert sc.due_snapshot_end(date(2026, 5, 11), date(2026, 6, 3)) == date(2026, 6, 1)
    assert sc.due_snapshot_end(date(2026, 5, 11), date(2026, 5, 1)) == date(2026, 5, 11)


def test_partition_keys() -> None:
    assert (
        sc.partition_key(date(2026, 5, 11))
        == "session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-05-11"
    )
    assert sc.partition_key(
        date(2026, 5, 11), "hermes-agent", "qwen/qwen3-coder:free", "10-49-turns"
    ) == (
        "session_cost/app_slug=hermes-agent/model=qwen%2Fqwen3-coder%3Afree/turn_range=10-49-turns/window_end=2026-05-11"
    )
    assert (
        sc.partition_key(date(2026, 5, 11), turn_range="1-turn")
        == "session_cost/app_slug=all/model=all/turn_range=1-turn/window_end=2026-05-11"
    )
