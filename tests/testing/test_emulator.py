"""Tests of the OpenRouter Data API emulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from airflow_provider_openrouter.testing import Emulator
from airflow_provider_openrouter.testing import emulator as emulator_module
from airflow_provider_openrouter.testing.dataset import (
    APPS,
    NO_TAIL_DAYS,
    SUBCATEGORIES,
    TIE_DAY,
    model_totals,
)

KEY = "sk-or-emulator"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
DAILY = "/datasets/rankings-daily"
APPS_PATH = "/datasets/app-rankings"
SUBCATEGORY_OF = {app.app_id: app.subcategory for app in APPS}


HTTP = httpx.Client(timeout=10)  # one client: building an SSL context per request is slow


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    HTTP.close()


def get(
    em: Emulator, path: str, key: str | None = KEY, timeout: float = 10, **params: Any
) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return HTTP.get(em.base_url + path, params=params, headers=headers, timeout=timeout)


def control(em: Emulator, name: str, payload: dict[str, Any] | None = None) -> httpx.Response:
    """GET ``/_emulator/<name>`` without a payload, else POST it as JSON."""
    if payload is None:
        return HTTP.get(f"{em.url}/_emulator/{name}")
    return HTTP.post(f"{em.url}/_emulator/{name}", json=payload)


def assert_error(response: httpx.Response, status: int, message_part: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "metadata"} and error["code"] == status
    assert error["metadata"] is None and message_part in error["message"]
    return error


def by_date(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        out.setdefault(row["date"], []).append(row)
    return out


@pytest.fixture
def em(openrouter_emulator: Emulator) -> Emulator:
    openrouter_emulator.set_now(NOW)
    return openrouter_emulator


# ------------------------------------------------------------------ rankings-daily


def test_default_window_meta_and_headers(em: Emulator) -> None:
    response = get(em, DAILY)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.json()
    assert body["meta"] == {
        "as_of": "2025-06-01T12:00:00Z",
        "start_date": "2025-05-01",
        "end_date": "2025-05-31",
        "version": "v1",
    }
    assert {row["date"] for row in body["data"]} == {
        str(date(2025, 5, 1) + timedelta(days=i)) for i in range(31)
    }


def test_rows_are_ordered_with_other_last_and_equal_to_the_tail(em: Emulator) -> None:
    rows = get(em, DAILY, start_date="2025-03-01", end_date="2025-03-31").json()["data"]
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    assert len({(r["date"], r["model_permaslug"]) for r in rows}) == len(rows)
    for day, day_rows in by_date(rows).items():
        assert set(day_rows[0]) == {"date", "model_permaslug", "total_tokens"}
        assert len(day_rows) == 51 and day_rows[-1]["model_permaslug"] == "other"
        top = [(-int(r["total_tokens"]), r["model_permaslug"]) for r in day_rows[:-1]]
        assert top == sorted(top) and all(slug != "other" for _, slug in top)
        tail = model_totals(date.fromisoformat(day))[50:]
        assert int(day_rows[-1]["total_tokens"]) == sum(tokens for _, tokens in tail) > 0


def test_no_other_row_on_days_without_a_tail(em: Emulator) -> None:
    days = by_date(get(em, DAILY, start_date="2025-01-01", end_date="2025-01-07").json()["data"])
    for day in NO_TAIL_DAYS:
        rows = days[day.isoformat()]
        assert 0 < len(rows) <= 50 and all(r["model_permaslug"] != "other" for r in rows)
    assert days["2025-01-06"][-1]["model_permaslug"] == "other"


def test_tie_day_has_equal_totals_ordered_by_permaslug(em: Emulator) -> None:
    rows = get(em, DAILY, start_date=str(TIE_DAY), end_date=str(TIE_DAY)).json()["data"]
    ties = [(a, b) for a, b in zip(rows[:-1], rows[1:-1]) if a["total_tokens"] == b["total_tokens"]]
    assert len(ties) == 1
    first, second = ties[0]
    assert first["model_permaslug"] < second["model_permaslug"]


def test_big_totals_are_exact_decimal_strings(em: Emulator) -> None:
    response = get(em, DAILY, start_date="2025-05-01", end_date="2025-05-31")
    rows = response.json()["data"]
    assert all(isinstance(r["total_tokens"], str) and r["total_tokens"].isdigit() for r in rows)
    big = [int(r["total_tokens"]) for r in rows if int(r["total_tokens"]) > 2**53]
    assert any(r["model_permaslug"] == "other" and int(r["total_tokens"]) > 2**53 for r in rows)
    assert any(int(float(value)) != value for value in big)  # a float parser loses digits
    assert f'"total_tokens":"{big[0]}"' in response.text


def test_start_before_floor_is_clamped_and_echoed(em: Emulator) -> None:
    body = get(em, DAILY, start_date="2024-06-01", end_date="2025-01-03").json()
    assert (body["meta"]["start_date"], body["meta"]["end_date"]) == ("2025-01-01", "2025-01-03")
    assert body["data"][0]["date"] == "2025-01-01"


def test_end_at_or_after_today_is_clamped_to_last_complete_day(em: Emulator) -> None:
    for end in ("2025-06-01", "2030-01-01"):
        body = get(em, DAILY, start_date="2025-05-30", end_date=end).json()
        assert body["meta"]["end_date"] == "2025-05-31"
        assert body["data"][-1]["date"] == "2025-05-31"


def test_default_start_follows_a_clamped_end(em: Emulator) -> None:
    assert get(em, DAILY, end_date="2025-01-10").json()["meta"]["start_date"] == "2025-01-01"
    assert get(em, DAILY, end_date="2025-03-31").json()["meta"]["start_date"] == "2025-03-01"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_date": "2025-1-01"}, "start_date"),
        ({"start_date": "20250101"}, "start_date"),
        ({"end_date": "2025/05/01"}, "end_date"),
        ({"end_date": ""}, "end_date"),
        ({"start_date": "２０２５-01-01"}, "start_date"),  # non-ASCII digits
        ({"start_date": "2025-05-01T00:00:00"}, "start_date"),
        ({"start_date": "2025-02-30"}, "start_date"),
        ({"end_date": "2025-13-01"}, "end_date"),
        ({"start_date": "2025-05-10", "end_date": "2025-05-09"}, "start_date"),
        ({"start_date": "2025-06-01", "end_date": "2025-06-01"}, "start_date"),  # only today
        ({"end_date": "2024-12-31"}, "end_date"),
        ({"start_date": "2024-01-01", "end_date": "2024-12-31"}, "end_date"),
    ],
)
def test_invalid_windows_are_rejected(em: Emulator, params: dict[str, str], message: str) -> None:
    assert_error(get(em, DAILY, **params), 400, message)
    assert_error(get(em, APPS_PATH, **params), 400, message)


def test_span_limit_is_366_days(em: Emulator) -> None:
    em.set_now(datetime(2026, 3, 1, tzinfo=timezone.utc))
    ok = get(em, DAILY, start_date="2025-01-01", end_date="2026-01-01")
    assert ok.status_code == 200 and len(by_date(ok.json()["data"])) == 366
    assert_error(get(em, DAILY, start_date="2025-01-01", end_date="2026-01-02"), 400, "366")
    # the span is measured after clamping the start to the floor
    assert get(em, DAILY, start_date="2024-01-01", end_date="2026-01-01").status_code == 200


def test_ingest_lag_delays_the_last_complete_day(em: Emulator) -> None:
    em.set_now(datetime(2025, 6, 1, 1, 30, 15, 999, tzinfo=timezone.utc))
    em.ingest_lag = timedelta(hours=2)
    meta = get(em, DAILY, start_date="2025-05-29", end_date="2025-05-31").json()["meta"]
    assert (meta["as_of"], meta["end_date"]) == ("2025-05-31T23:30:15Z", "2025-05-30")
    em.ingest_lag = timedelta(0)
    assert get(em, DAILY, end_date="2025-05-31").json()["meta"]["end_date"] == "2025-05-31"


# ------------------------------------------------------------------ app-rankings


def test_app_rankings_pages_have_absolute_ranks(em: Emulator) -> None:
    pages = [
        get(em, APPS_PATH, limit=limit, offset=offset).json()
        for limit, offset in ((50, 0), (50, 50), (100, 0), (100, 100))
    ]
    first, second, whole, third = (page["data"] for page in pages)
    assert pages[0]["meta"] == {
        "as_of": "2025-06-01T12:00:00Z",
        "start_date": "2025-05-01",
        "end_date": "2025-05-31",
        "version": "v1",
    }
    assert [r["rank"] for r in first + second] == list(range(1, 101))
    assert first + second == whole
    assert third[0]["rank"] == 101 and not {r["app_id"] for r in third} & {
        r["app_id"] for r in whole
    }
    tokens = [int(r["total_tokens"]) for r in whole + third]
    assert tokens == sorted(tokens, reverse=True)
    row = first[0]
    assert set(row) == {"app_id", "app_name", "rank", "total_requests", "total_tokens"}
    assert isinstance(row["app_id"], int) and isinstance(row["total_requests"], int)
    assert isinstance(row["total_tokens"], str) and row["total_tokens"].isdigit()
    assert len(get(em, APPS_PATH).json()["data"]) == 50  # default limit


def test_app_names_are_free_text(em: Emulator) -> None:
    names = {
        r["app_name"]
        for offset in (0, 100)
        for r in get(em, APPS_PATH, limit=100, offset=offset).json()["data"]
    }
    assert "Line one\nLine two" in names and 'Say "Hello", World' in names
    assert "Rocket 🚀 Agent" in names


def test_trending_omits_apps_without_growth(em: Emulator) -> None:
    def all_rows(sort: str) -> list[dict[str, Any]]:
        return [
            r
            for offset in (0, 100)
            for r in get(em, APPS_PATH, sort=sort, limit=100, offset=offset).json()["data"]
        ]

    popular, trending = all_rows("popular"), all_rows("trending")
    assert 0 < len(trending) < len(popular) and len(trending) < 200
    assert [r["rank"] for r in trending] == list(range(1, len(trending) + 1))
    assert [r["app_id"] for r in trending] != [r["app_id"] for r in popular[: len(trending)]]
    assert get(em, APPS_PATH, sort="popular").json() == get(em, APPS_PATH).json()


def test_filters_rank_within_the_filtered_set(em: Emulator) -> None:
    coding = get(em, APPS_PATH, category="coding", limit=100).json()["data"]
    assert coding and all(SUBCATEGORIES[SUBCATEGORY_OF[r["app_id"]]] == "coding" for r in coding)
    assert [r["rank"] for r in coding] == list(range(1, len(coding) + 1))
    legal = get(em, APPS_PATH, subcategory="legal", category="productivity").json()["data"]
    assert legal and all(SUBCATEGORY_OF[r["app_id"]] == "legal" for r in legal)
    assert legal[0]["rank"] == 1 and len(legal) < 50
    assert (
        get(em, APPS_PATH, subcategory="legal").json()
        == get(em, APPS_PATH, subcategory="legal", category="productivity").json()
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "newest"}, "sort"),
        ({"category": "music"}, "category"),
        ({"subcategory": "chat"}, "subcategory"),
        ({"category": "coding", "subcategory": "roleplay"}, "subcategory"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"offset": "101"}, "offset"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_invalid_app_parameters_are_rejected(
    em: Emulator, params: dict[str, str], message: str
) -> None:
    assert_error(get(em, APPS_PATH, **params), 400, message)


def test_limit_and_offset_bounds_are_inclusive(em: Emulator) -> None:
    assert len(get(em, APPS_PATH, limit=1).json()["data"]) == 1
    assert get(em, APPS_PATH, limit=100, offset=100).json()["data"][0]["rank"] == 101


# ------------------------------------------------------------------ auth and /key


def test_auth_errors(em: Emulator) -> None:
    for path in (DAILY, APPS_PATH, "/key"):
        assert_error(get(em, path, key=None), 401, "Missing Authentication header")
        assert_error(get(em, path, key="sk-or-wrong"), 401, "Invalid API key")
    basic = HTTP.get(em.base_url + DAILY, headers={"Authorization": f"Basic {KEY}"})
    assert_error(basic, 401, "Invalid API key")


def test_key_endpoint_masks_the_key(openrouter_emulator_factory: Any) -> None:
    key = "sk-or-v1-0123456789abcdef"
    em = openrouter_emulator_factory(api_keys=(key, "other-key"))
    response = get(em, "/key", key=key)
    data = response.json()["data"]
    assert data["label"] == "sk-or-v1...def" and key not in response.text
    assert (data["limit"], data["usage"], data["is_free_tier"]) == (None, 0, False)
    assert get(em, "/key", key="other-key").status_code == 200
    assert_error(get(em, "/key"), 401, "Invalid API key")  # the default key is not configured


def test_unknown_path_is_404(em: Emulator) -> None:
    assert_error(get(em, "/datasets/nope"), 404)
    assert_error(HTTP.get(em.url + "/favicon.ico"), 404)


# ------------------------------------------------------------------ rate limits


class FakeMonotonic:
    """Replaces the emulator module's ``time`` so the 60 s window can be stepped through."""

    def __init__(self) -> None:
        self.value = 1000.0

    def monotonic(self) -> float:
        return self.value

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


def test_per_key_rate_limit_slides(
    openrouter_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr(emulator_module, "time", clock)
    em = openrouter_emulator_factory(rpm=3, daily_limit=None, now=NOW, api_keys=(KEY, "k2"))
    statuses = []
    for step in (0, 10, 20):
        clock.value = 1000.0 + step
        statuses.append(get(em, DAILY, end_date="2025-05-02" if step else "bad").status_code)
    assert statuses == [400, 200, 200]  # a 400 counts too
    clock.value = 1030.0
    rejected = get(em, DAILY)
    assert_error(rejected, 429, "Rate limit exceeded: 3 requests per minute")
    assert rejected.headers["retry-after"] == "30"
    assert get(em, DAILY, key="k2").status_code == 200  # limits are per key
    assert_error(get(em, DAILY, key="bad-key"), 401)  # auth comes first, never counted
    clock.value = 1059.5
    assert get(em, DAILY).headers["retry-after"] == "1"
    clock.value = 1060.0  # the first request leaves the window; 429s did not count
    assert get(em, DAILY).status_code == 200
    assert get(em, DAILY).status_code == 429
    assert get(em, "/key").status_code == 200  # /key is not rate-limited


@pytest.mark.parametrize("retry_after", ["http-date", None])
def test_rate_limit_retry_after_formats(
    openrouter_emulator_factory: Any, retry_after: str | None
) -> None:
    em = openrouter_emulator_factory(rpm=1, daily_limit=None, retry_after=retry_after, now=NOW)
    assert get(em, DAILY).status_code == 200
    rejected = get(em, DAILY)
    assert rejected.status_code == 429
    if retry_after is None:
        assert "retry-after" not in rejected.headers
    else:
        wait = parsedate_to_datetime(rejected.headers["retry-after"]) - datetime.now(timezone.utc)
        assert 55 <= wait.total_seconds() <= 62


def test_daily_limit_is_per_account_and_resets_at_utc_midnight(
    openrouter_emulator_factory: Any,
) -> None:
    em = openrouter_emulator_factory(rpm=None, daily_limit=3, now=NOW, api_keys=(KEY, "k2"))
    assert [get(em, DAILY, key=k).status_code for k in (KEY, "k2", KEY)] == [200, 200, 200]
    for key in (KEY, "k2"):
        rejected = get(em, DAILY, key=key)
        assert_error(rejected, 429, "Daily request limit exceeded: 3 requests per day")
        assert rejected.headers["retry-after"] == str(12 * 3600)
    em.set_limits(retry_after="http-date")
    wait = parsedate_to_datetime(get(em, APPS_PATH).headers["retry-after"]) - datetime.now(
        timezone.utc
    )
    assert abs(wait.total_seconds() - 12 * 3600) < 5
    em.set_now(datetime(2025, 6, 2, 0, 0, 1, tzinfo=timezone.utc))
    assert get(em, DAILY).status_code == 200


def test_disabled_limits(openrouter_emulator: Emulator) -> None:
    assert (openrouter_emulator.rpm, openrouter_emulator.daily_limit) == (None, None)
    assert all(
        get(openrouter_emulator, "/datasets/rankings-daily", end_date="2025-01-02").status_code
        == 200
        for _ in range(35)
    )


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("500", 500, "application/json"),
        ("503", 503, "application/json"),
        ("502_html", 502, "text/html"),
    ],
)
def test_error_faults(em: Emulator, kind: str, status: int, content_type: str) -> None:
    em.inject(kind)
    response = get(em, DAILY)
    assert response.status_code == status and response.headers["content-type"] == content_type
    if content_type == "text/html":
        assert response.text.startswith("<html>")
    else:
        assert_error(response, status)
    assert response.headers.get("retry-after") == ("1" if kind == "503" else None)
    assert get(em, DAILY).status_code == 200  # times=1


def test_truncated_and_reset_faults_break_the_transport(em: Emulator) -> None:
    em.inject("truncated")
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message"):
        get(em, DAILY)
    em.inject("reset")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        get(em, DAILY)
    assert get(em, DAILY).status_code == 200
    assert [(e["fault"], e["status"]) for e in em.requests] == [
        ("truncated", 200),
        ("reset", None),
        (None, 200),
    ]


def test_slow_fault_delays_a_normal_answer(em: Emulator) -> None:
    em.inject("slow", seconds=0.3)
    started = time.monotonic()
    response = get(em, DAILY)
    assert time.monotonic() - started >= 0.3 and response.status_code == 200
    assert response.json()["meta"]["end_date"] == "2025-05-31"
    em.inject("slow", seconds=0.5)
    with pytest.raises(httpx.ReadTimeout):
        get(em, DAILY, timeout=0.1)


def test_429_fault_with_and_without_retry_after(em: Emulator) -> None:
    em.inject("429", retry_after="7")
    em.inject("429")
    first, second = get(em, DAILY), get(em, DAILY)
    assert_error(first, 429) and assert_error(second, 429)
    assert first.headers["retry-after"] == "7" and "retry-after" not in second.headers


def test_bad_json_and_payload_faults(em: Emulator) -> None:
    em.inject("bad_json")
    response = get(em, DAILY)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    body = {
        "data": [{"date": "2025-05-01", "model_permaslug": "x", "total_tokens": -1.5}] * 2,
        "meta": {"version": "v2"},
    }
    em.inject("payload", body=body)
    assert get(em, DAILY).json() == body


def test_faults_match_paths_in_fifo_order_and_do_not_count(
    openrouter_emulator_factory: Any,
) -> None:
    em = openrouter_emulator_factory(rpm=2, daily_limit=None, now=NOW)
    em.inject("500", times=2, path=APPS_PATH)
    em.inject("503", path=APPS_PATH)
    em.inject("502_html", path=DAILY)
    assert get(em, "/key").status_code == 200
    assert [get(em, APPS_PATH).status_code for _ in range(4)] == [500, 500, 503, 200]
    assert [get(em, DAILY).status_code for _ in range(3)] == [502, 200, 429]
    assert em.request_count(status=429) == 1
    with pytest.raises(ValueError):
        em.inject("teapot")
    with pytest.raises(ValueError):
        em.inject("slow")


def test_fault_with_times_none_repeats_until_reset(em: Emulator) -> None:
    em.inject("500", times=None)
    assert [get(em, DAILY).status_code for _ in range(3)] == [500, 500, 500]
    em.reset()
    assert get(em, DAILY).status_code == 200


# ------------------------------------------------------------------ restatement


def test_restatement_changes_numbers_and_nothing_else(em: Emulator) -> None:
    window = {"start_date": "2025-05-20", "end_date": "2025-05-22"}
    before = get(em, DAILY, **window).json()
    apps_before = get(em, APPS_PATH, **window).json()["data"]
    assert em.restate(date(2025, 5, 21)) == 1
    after = get(em, DAILY, **window).json()
    assert after["meta"] == before["meta"]
    assert [(r["date"], r["model_permaslug"]) for r in after["data"]] == [
        (r["date"], r["model_permaslug"]) for r in before["data"]
    ]
    for old, new in zip(before["data"], after["data"]):
        if old["date"] == "2025-05-21":
            assert 1.0 < int(new["total_tokens"]) / int(old["total_tokens"]) < 1.06
        else:
            assert new == old
    apps_after = get(em, APPS_PATH, **window).json()["data"]
    assert all(
        int(a["total_tokens"]) > int(b["total_tokens"]) for a, b in zip(apps_after, apps_before)
    )
    assert em.restate("2025-05-21") == 2
    assert get(em, DAILY, **window).json()["data"] != after["data"]


# ------------------------------------------------------------------ log and control


def test_request_log(em: Emulator) -> None:
    get(em, DAILY, start_date="2025-05-01", end_date="2025-05-02")
    get(em, APPS_PATH, limit="x")
    get(em, "/key", key=None)
    control(em, "requests")
    log = em.requests
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/api/v1" + DAILY, 200),
        ("GET", "/api/v1" + APPS_PATH, 400),
        ("GET", "/api/v1/key", 401),
    ]
    assert log[0]["params"] == {"start_date": "2025-05-01", "end_date": "2025-05-02"}
    assert log[0]["time"] == NOW.isoformat() and log[0]["fault"] is None
    assert set(log[0]) == {"method", "path", "params", "status", "time", "fault"}
    assert KEY not in json.dumps(log)
    assert em.request_count(DAILY) == 1 and em.request_count(status=400) == 1
    assert em.request_count() == 3 and em.request_count(APPS_PATH, status=200) == 0
    log[0]["status"] = 999  # a copy
    assert em.request_count(status=999) == 0
    em.clear_log()
    assert em.requests == []


def test_http_control_endpoints(em: Emulator) -> None:
    assert control(
        em, "clock", {"now": "2025-04-10T06:00:00Z", "ingest_lag_seconds": 3600}
    ).json() == {"ok": True}
    assert get(em, DAILY).json()["meta"]["as_of"] == "2025-04-10T05:00:00Z"
    assert control(em, "clock").json()["last_complete_day"] == "2025-04-09"
    control(em, "limits", {"rpm": 1, "retry_after": None})
    assert get(em, DAILY).status_code == 429 and em.rpm == 1
    assert "retry-after" not in get(em, DAILY).headers
    control(em, "reset", {})
    control(em, "faults", {"kind": "payload", "times": 1, "path": DAILY, "body": {"data": []}})
    assert get(em, DAILY).json() == {"data": []}
    assert [get(em, DAILY).status_code for _ in range(2)] == [200, 429]  # the fault did not count
    assert control(em, "restate", {"date": "2025-04-01"}).json()["version"] == 1
    assert em.version(date(2025, 4, 1)) == 1
    logged = control(em, "requests").json()["requests"]
    assert [(e["fault"], e["status"]) for e in logged] == [
        ("payload", 200),
        (None, 200),
        (None, 429),
    ]
    assert control(em, "reset", {}).json() == {"ok": True}
    assert em.requests == [] and get(em, DAILY).status_code == 200
    control(em, "limits", {"rpm": None})
    assert_error(control(em, "faults", {"kind": "teapot"}), 400)
    assert_error(control(em, "clock", {"now": "2025-04-10T06:00:00"}), 400)  # naive
    assert_error(control(em, "nothing", {}), 404)
    control(em, "clock", {"now": None})
    assert (
        get(em, DAILY).json()["meta"]["as_of"][:10] == datetime.now(timezone.utc).date().isoformat()
    )


# ------------------------------------------------------------------ server behaviour


def test_keep_alive_and_concurrency(em: Emulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", em.port, timeout=10)
    for _ in range(2):  # two requests over one connection
        connection.request("GET", "/api/v1/key", headers={"Authorization": f"Bearer {KEY}"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["data"]["usage"] == 0
    connection.close()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: get(em, APPS_PATH).status_code, range(16)))
    assert statuses == [200] * 16 and em.request_count(APPS_PATH) == 16


def test_stop_closes_the_port(openrouter_emulator_factory: Any) -> None:
    em = openrouter_emulator_factory()
    with httpx.Client() as client:
        assert (
            client.get(em.base_url + "/key", headers={"Authorization": f"Bearer {KEY}"}).status_code
            == 200
        )
        em.stop()
        with pytest.raises(httpx.TransportError):
            client.get(em.base_url + "/key", headers={"Authorization": f"Bearer {KEY}"})
    with Emulator() as other:
        assert other.base_url == f"http://127.0.0.1:{other.port}/api/v1" and other.port > 0


def test_cli_serves_the_same_data_and_exits_cleanly(em: Emulator) -> None:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_openrouter.testing.emulator",
        "--port",
        "0",
        "--key",
        "k1",
        "--key",
        "k2",
        "--rpm",
        "0",
        "--now",
        "2025-06-01T12:00:00Z",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", base_url)
        params = {"start_date": "2025-05-01", "end_date": "2025-05-03"}
        remote = HTTP.get(base_url + DAILY, params=params, headers={"Authorization": "Bearer k2"})
        assert remote.status_code == 200
        assert remote.content == get(em, DAILY, **params).content  # deterministic across processes
        assert (
            HTTP.get(base_url + "/key", headers={"Authorization": f"Bearer {KEY}"}).status_code
            == 401
        )
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0 and stderr == ""  # quiet: no line per request
