"""OpenRouterHook.get_session_cost through a real connection, against the emulator over loopback."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.api.retry import RetryPolicy
from airflow_provider_openrouter.exceptions import (
    BadRequestError,
    InvalidParameterError,
    InvalidResponseError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.testing import dataset

FAST = RetryPolicy(
    max_attempts=2, max_rate_limit_retries=1, backoff_base=0.01, backoff_max=0.02, jitter=0.0
)
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
END = date(2026, 2, 23)
PATH = "/datasets/session-cost"


@pytest.fixture
def emulator(openrouter_emulator_factory: Any) -> Any:
    return openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)


@pytest.fixture
def hook(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> OpenRouterHook:
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENROUTER_DEFAULT",
        json.dumps(
            {
                "conn_type": "openrouter",
                "password": "sk-or-emulator",
                "host": emulator.base_url,
                "extra": {"requests_per_minute": 10000},
            }
        ),
    )
    return OpenRouterHook(retry_policy=FAST)


def offsets(emulator: Any) -> list[tuple[int, int]]:
    return [(int(r["params"]["offset"]), int(r["params"]["limit"])) for r in emulator.requests]


def test_pages_past_500_cells_with_exact_costs(hook: OpenRouterHook, emulator: Any) -> None:
    result = hook.get_session_cost(max_cells=2000)
    expected = dataset.session_cost_rows(END)
    assert [r.to_record() for r in result.rows] == [
        {
            k: e[k]
            for k in (
                "app_slug",
                "app_name",
                "model_permaslug",
                "turn_range",
                "median_session_cost_usd",
            )
        }
        for e in expected
    ]
    assert result.rows[0].median_session_cost_usd == Decimal(dataset.EXACT_COST)
    assert str(result.rows[0].median_session_cost_usd) == "0.12345678901234567890123"
    assert offsets(emulator) == [(0, 500), (500, 500), (1000, 500)]  # the third page is short: done
    assert result.complete and not result.capped and hook.request_count == 3
    assert (
        result.meta.window_end_date == END
        and result.meta.window_days == 30
        and result.meta.version == "v1"
    )
    assert result.meta.as_of == NOW


def test_default_max_cells_stops_at_one_page_and_says_more_may_exist(
    hook: OpenRouterHook, emulator: Any
) -> None:
    result = hook.get_session_cost()
    assert (
        len(result.rows) == 500
        and result.truncated
        and not result.capped
        and offsets(emulator) == [(0, 500)]
    )


def test_an_exact_multiple_of_a_page_needs_one_empty_page_to_be_sure(
    hook: OpenRouterHook, emulator: Any
) -> None:
    emulator.set_session_cost(cells=1000)
    result = hook.get_session_cost(max_cells=5500)
    assert (
        len(result.rows) == 1000
        and result.complete
        and offsets(emulator) == [(0, 500), (500, 500), (1000, 500)]
    )


def test_the_offset_ceiling_caps_the_answer(hook: OpenRouterHook, emulator: Any) -> None:
    emulator.set_session_cost(cells=6400)
    result = hook.get_session_cost(max_cells=5500)
    assert len(result.rows) == 5500 and result.capped and not result.truncated
    assert offsets(emulator)[-1] == (5000, 500) and len(offsets(emulator)) == 11
    assert len({r.cell for r in result.rows}) == 5500


def test_filters_are_sent_and_checked(hook: OpenRouterHook, emulator: Any) -> None:
    result = hook.get_session_cost(app_slug="aider", turn_range="1-turn")
    assert result.rows and all(
        r.app_slug == "aider" and r.turn_range == "1-turn" for r in result.rows
    )
    assert emulator.requests[0]["params"] == {
        "app_slug": "aider",
        "turn_range": "1-turn",
        "limit": "500",
        "offset": "0",
    }
    assert hook.get_session_cost(app_slug="no-such-harness").rows == ()  # an unknown slug: no cells


def test_no_snapshot_published(hook: OpenRouterHook, emulator: Any) -> None:
    emulator.set_session_cost(published=False)
    result = hook.get_session_cost(max_cells=5500)
    assert result.rows == () and not result.meta.published and result.meta.window is None
    assert hook.request_count == 1 and result.complete


@pytest.mark.parametrize(
    "kwargs",
    [
        {"turn_range": "many"},
        {"model": "gpt-5"},
        {"app_slug": "Hermes Agent"},
        {"max_cells": 5501},
        {"max_cells": 0},
    ],
)
def test_bad_parameters_spend_no_request(
    hook: OpenRouterHook, emulator: Any, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidParameterError):
        hook.get_session_cost(**kwargs)
    assert emulator.requests == []


def test_a_new_snapshot_between_pages_is_refused(hook: OpenRouterHook, emulator: Any) -> None:
    client = hook.get_conn()
    original = client.get
    calls: list[int] = []

    def get(
        path: str, params: Any = None
    ) -> Any:  # OpenRouter publishes the next snapshot after page 1
        calls.append(1)
        if len(calls) == 2:
            emulator.set_now(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc))
        return original(path, params)

    client.get = get  # type: ignore[method-assign]
    with pytest.raises(
        InvalidResponseError, match=r"page 2 comes from another snapshot .* ending 2026-03-02"
    ):
        hook.get_session_cost(max_cells=1500)
    assert [r["params"]["offset"] for r in emulator.requests] == ["0", "500"]


def test_duplicate_cells_and_bad_turn_ranges_are_refused(
    hook: OpenRouterHook, emulator: Any
) -> None:
    meta = {
        "as_of": "2026-03-01T02:00:00Z",
        "version": "v1",
        "window_days": 30,
        "window_end_date": END.isoformat(),
    }
    cell = {
        "app_name": "Aider",
        "app_slug": "aider",
        "median_session_cost_usd": 1.5,
        "model_permaslug": "openai/gpt-5",
        "turn_range": "1-turn",
    }
    emulator.inject("payload", times=1, path=PATH, body={"data": [cell, cell], "meta": meta})
    with pytest.raises(InvalidResponseError, match="appears twice"):
        hook.get_session_cost()
    emulator.inject(
        "payload",
        times=1,
        path=PATH,
        body={"data": [{**cell, "turn_range": "100-plus-turns"}], "meta": meta},
    )
    with pytest.raises(InvalidResponseError, match="'100-plus-turns' is not one of"):
        hook.get_session_cost()


def test_api_rejections_and_the_key_never_in_logs(
    hook: OpenRouterHook,
    emulator: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    hook.get_session_cost(max_cells=1200)
    emulator.inject(
        "payload",
        times=1,
        path=PATH,
        status=400,
        body={"error": {"code": 400, "message": "Invalid offset", "metadata": None}},
    )
    with pytest.raises(BadRequestError, match="Invalid offset"):
        hook.get_session_cost()
    out = capfd.readouterr()
    assert "sk-or-emulator" not in caplog.text + out.out + out.err
    assert (
        "1200 cell(s) in 3 request(s), snapshot v1 of 30 day(s) ending 2026-02-23"
        in caplog.text + out.out + out.err
    )


def test_probe_outcomes(hook: OpenRouterHook, emulator: Any) -> None:
    from airflow_provider_openrouter.api.datasets.session_cost import SessionCostMeta
    from airflow_provider_openrouter.runtime import probe

    meta = hook.probe_session_cost()
    assert isinstance(meta, SessionCostMeta) and meta.window_end_date == END
    assert emulator.requests[-1]["params"] == {"limit": "1", "offset": "0"}
    emulator.set_session_cost(published=False)
    assert hook.probe_session_cost().published is False  # type: ignore[union-attr]
    emulator.inject(
        "429", times=1, path=PATH, retry_after=3600, message="Daily request limit exceeded"
    )
    refused = hook.probe_session_cost()
    assert isinstance(refused, probe.RetryAt) and refused.moment is not None
    emulator.inject("503", times=None, path=PATH)
    assert isinstance(hook.probe_session_cost(), probe.TransientFailure)
    emulator.reset()
    emulator.inject(
        "payload",
        times=1,
        path=PATH,
        body={"data": [], "meta": {"as_of": "2026-03-01T02:00:00Z", "version": "v1"}},
    )
    with pytest.raises(InvalidResponseError, match="window_days"):
        hook.probe_session_cost()
