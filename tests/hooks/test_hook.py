"""OpenRouterHook through a real Airflow connection, against the emulator over loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.api.retry import RetryPolicy
from airflow_provider_openrouter.exceptions import (
    AuthenticationError,
    InvalidParameterError,
    InvalidResponseError,
    OpenRouterError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe
from airflow_provider_openrouter.windows.intervals import DATASET_FLOOR

FAST = RetryPolicy(
    max_attempts=2, max_rate_limit_retries=1, backoff_base=0.01, backoff_max=0.02, jitter=0.0
)


def set_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str = "openrouter_default", **fields: Any
) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "openrouter", **fields})
    )


@pytest.fixture
def hook(openrouter_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> OpenRouterHook:
    set_connection(monkeypatch, password="sk-or-emulator", host=openrouter_emulator.base_url)
    return OpenRouterHook(retry_policy=FAST)


def test_connection_defaults_and_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, "or_plain", password="sk-or-xxxxxxxxxxxx")
    client = OpenRouterHook("or_plain").get_conn()
    assert client.base_url == "https://openrouter.ai/api/v1"
    assert client.timeout == 60.0 and client._limiter.requests_per_minute == 30
    set_connection(
        monkeypatch,
        "or_extras",
        password="sk-or-xxxxxxxxxxxx",
        host="proxy.internal/api/v1",
        extra={
            "timeout": "12.5",
            "requests_per_minute": 20,
            "http_referer": "https://lake.example",
            "x_title": "Lake",
            "categories": "cli-agent",
        },
    )
    client = OpenRouterHook("or_extras").get_conn()
    assert client.base_url == "https://proxy.internal/api/v1"
    assert client.timeout == 12.5 and client._limiter.requests_per_minute == 20
    assert (
        client._headers["X-OpenRouter-Title"] == "Lake"
        and client._headers["X-OpenRouter-Categories"] == "cli-agent"
    )
    assert client._headers["HTTP-Referer"] == "https://lake.example"


@pytest.mark.parametrize(
    "extra",
    [
        {"timeout": "soon"},
        {"timeout": -1},
        {"requests_per_minute": "2.5"},
        {"requests_per_minute": 0},
        {"requests_per_minute": True},
    ],
)
def test_bad_extras_are_named(monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]) -> None:
    set_connection(monkeypatch, "or_bad", password="sk-or-xxxxxxxxxxxx", extra=extra)
    with pytest.raises(
        InvalidParameterError, match=f"Extra '{next(iter(extra))}' of connection 'or_bad'"
    ):
        OpenRouterHook("or_bad").get_conn()


def test_test_connection_success_and_invalid_key(
    hook: OpenRouterHook, openrouter_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, message = hook.test_connection()
    assert ok and "is valid" in message and openrouter_emulator.base_url in message
    assert openrouter_emulator.request_count("/key") == 1
    set_connection(
        monkeypatch, "or_wrong", password="sk-or-not-a-real-key", host=openrouter_emulator.base_url
    )
    ok, message = OpenRouterHook("or_wrong").test_connection()
    assert not ok and "invalid API key" in message and "Traceback" not in message


def unused_local_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_test_connection_messages_do_not_name_the_connection_id(
    openrouter_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The UI and the REST API test an unsaved connection under a random temporary id.
    set_connection(
        monkeypatch,
        "tmp_4f2a9c",
        password="sk-or-not-a-real-key",
        host=openrouter_emulator.base_url,
    )
    ok, message = OpenRouterHook("tmp_4f2a9c").test_connection()
    assert not ok and "invalid API key" in message and "this connection" in message
    assert "tmp_4f2a9c" not in message and "sk-or-not-a-real-key" not in message
    set_connection(
        monkeypatch, "tmp_4f2a9c", password="sk-or-emulator", host="ftp://example.invalid/api/v1"
    )
    ok, message = OpenRouterHook("tmp_4f2a9c").test_connection()
    assert not ok and "it must be an http(s) URL" in message and "tmp_4f2a9c" not in message


def test_test_connection_404_says_to_check_the_base_url_path(
    openrouter_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = openrouter_emulator.base_url.removesuffix("/api/v1")
    set_connection(monkeypatch, "or_root", password="sk-or-emulator", host=root)
    ok, message = OpenRouterHook("or_root").test_connection()
    assert not ok and "HTTP 404" in message
    assert "Check that the Base URL ends with /api/v1" in message and f"{root}/key" in message
    assert openrouter_emulator.request_count() == 1


def test_test_connection_reports_an_unreachable_host_after_one_attempt(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base_url = f"http://127.0.0.1:{unused_local_port()}/api/v1"
    set_connection(monkeypatch, "or_down", password="sk-or-xxxxxxxxxxxx", host=base_url)
    caplog.set_level(logging.INFO)
    ok, message = OpenRouterHook(
        "or_down"
    ).test_connection()  # the default policy would retry 4 times
    assert not ok and message.startswith(f"Could not reach {base_url} (ConnectError")
    assert "Check the Base URL" in message and "or_down" not in message
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


@pytest.mark.parametrize(
    ("uri", "base_url"),
    [
        # the form Airflow's own Connection.get_uri() writes for host https://openrouter.ai/api/v1
        (
            "openrouter://https://:sk-or-xxxxxxxxxxxx@openrouter.ai%2Fapi%2Fv1/",
            "https://openrouter.ai/api/v1",
        ),
        ("openrouter://:sk-or-xxxxxxxxxxxx@openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
        (
            "openrouter://https://:sk-or-xxxxxxxxxxxx@openrouter.ai/api/v1",
            "https://openrouter.ai/api/v1",
        ),
        (
            "openrouter://:sk-or-xxxxxxxxxxxx@https%3A%2F%2Fopenrouter.ai%2Fapi%2Fv1",
            "https://openrouter.ai/api/v1",
        ),
        (
            "openrouter://http://:sk-or-xxxxxxxxxxxx@127.0.0.1:8080/api/v1?x_title=Lake",
            "http://127.0.0.1:8080/api/v1",
        ),
        (
            "openrouter://:sk-or-xxxxxxxxxxxx@proxy.internal:8443/openrouter/api/v1",
            "https://proxy.internal:8443/openrouter/api/v1",
        ),
        ("openrouter://:sk-or-xxxxxxxxxxxx@", "https://openrouter.ai/api/v1"),
    ],
)
def test_a_uri_connection_keeps_the_base_url_path(
    monkeypatch: pytest.MonkeyPatch, uri: str, base_url: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OR_URI", uri)
    assert OpenRouterHook("or_uri").get_conn().base_url == base_url


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (
            {"host": "https://openrouter.ai/api/v1", "schema": "v2"},
            "has a Base URL with the path '/api/v1' and a schema",
        ),
        (
            {"host": "http://127.0.0.1:8080/api/v1", "port": 9090},
            "has port 9090 and a Base URL with port 8080",
        ),
        ({"schema": "api/v1"}, "but no host"),
    ],
)
def test_a_connection_that_would_lose_or_mix_up_its_path_is_refused(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], match: str
) -> None:
    set_connection(monkeypatch, "or_mixed", password="sk-or-xxxxxxxxxxxx", **fields)
    with pytest.raises(InvalidParameterError, match=match):
        OpenRouterHook("or_mixed").get_conn()


def test_a_uri_connection_to_the_emulator_tests_ok(
    openrouter_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostport = openrouter_emulator.base_url.removeprefix("http://").removesuffix("/api/v1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OR_URI", f"openrouter://http://:sk-or-emulator@{hostport}/api/v1"
    )
    ok, message = OpenRouterHook("or_uri").test_connection()
    assert ok and message.startswith(f"Connected to {openrouter_emulator.base_url};")


def test_rankings_daily_typed_exact_and_counted(hook: OpenRouterHook) -> None:
    result = hook.get_rankings_daily(date(2025, 3, 1), "2025-03-03")
    assert {r.date for r in result.rows} == {date(2025, 3, d) for d in (1, 2, 3)}
    assert all(type(r.total_tokens) is int for r in result.rows)
    assert max(r.total_tokens for r in result.rows) > 2**53
    assert result.rows[50].model_permaslug == "other"
    assert result.meta.as_of.tzinfo is not None and result.meta.version == "v1"
    assert not result.clamped and hook.request_count == 1


def test_clamped_windows_are_exposed_not_hidden(
    hook: OpenRouterHook, openrouter_emulator: Any
) -> None:
    early = hook.get_rankings_daily("2024-12-30", "2025-01-02")
    assert (
        early.clamped
        and early.meta.start_date == DATASET_FLOOR
        and early.requested.start == date(2024, 12, 30)
    )
    last = openrouter_emulator.last_complete_day()
    late = hook.get_rankings_daily(last, date.fromordinal(last.toordinal() + 2))
    assert late.clamped and late.meta.end_date == last


@pytest.mark.parametrize(
    "start,end,match",
    [
        ("2025-03-05", "2025-03-01", "before start_date"),
        ("2024-01-01", "2024-12-31", "first day"),
        ("2025-01-01", "2026-01-02", "spans 367 days"),
        ("2025-3-1", "2025-03-02", "YYYY-MM-DD"),
    ],
)
def test_bad_windows_cost_no_request(
    hook: OpenRouterHook, openrouter_emulator: Any, start: str, end: str, match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        hook.get_rankings_daily(start, end)
    assert openrouter_emulator.request_count() == 0


def test_invalid_response_names_field_and_row(
    hook: OpenRouterHook, openrouter_emulator: Any
) -> None:
    body = {
        "data": [{"date": "2025-03-01", "model_permaslug": "x/y", "total_tokens": 1.5}],
        "meta": {
            "as_of": "2025-03-02T01:00:00Z",
            "start_date": "2025-03-01",
            "end_date": "2025-03-01",
            "version": "v1",
        },
    }
    openrouter_emulator.inject("payload", body=body)
    with pytest.raises(InvalidResponseError) as info:
        hook.get_rankings_daily("2025-03-01", "2025-03-01")
    assert (info.value.field, info.value.row) == ("total_tokens", 0)


def test_app_rankings_page_to_the_ceiling(hook: OpenRouterHook, openrouter_emulator: Any) -> None:
    result = hook.get_app_rankings("2025-06-01", "2025-06-30", max_apps=200)
    assert [r.rank for r in result.rows] == list(range(1, len(result.rows) + 1))
    assert [p["offset"] for p in result.requests] == [0, 100][: len(result.requests)]
    assert result.capped == (len(result.rows) == 200)
    assert (
        hook.request_count
        == len(result.requests)
        == openrouter_emulator.request_count("/datasets/app-rankings")
    )
    small = hook.get_app_rankings(
        "2025-06-01", "2025-06-30", sort="popular", category="coding", max_apps=5
    )
    assert len(small.rows) == 5 and not small.capped and small.requests[0]["category"] == "coding"


def test_trending_short_page_stops_paging(hook: OpenRouterHook, openrouter_emulator: Any) -> None:
    result = hook.get_app_rankings(
        "2025-06-01", "2025-06-07", sort="trending", subcategory="roleplay", max_apps=150
    )
    assert len(result.rows) < 100
    assert len(result.requests) == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sort": "hot"}, "sort='hot'"),
        ({"category": "Coding"}, "category='Coding'"),
        ({"subcategory": "cli"}, "subcategory='cli'"),
        ({"category": "creative", "subcategory": "cli-agent"}, "belongs to category 'coding'"),
        ({"max_apps": 201}, "max_apps=201"),
        ({"max_apps": 0}, "max_apps=0"),
    ],
)
def test_bad_app_parameters_cost_no_request(
    hook: OpenRouterHook, openrouter_emulator: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        hook.get_app_rankings("2025-06-01", "2025-06-07", **kwargs)
    assert openrouter_emulator.request_count() == 0


def test_every_error_is_an_openrouter_error_and_an_airflow_exception() -> None:
    from airflow.exceptions import AirflowException

    from airflow_provider_openrouter import exceptions

    classes = [
        getattr(exceptions, n)
        for n in dir(exceptions)
        if n.endswith("Error") and n != "OpenRouterError"
    ]
    assert len(classes) >= 8
    assert all(
        issubclass(c, exceptions.OpenRouterError) and issubclass(c, AirflowException)
        for c in classes
    )
    assert issubclass(exceptions.QuotaExhaustedError, exceptions.RateLimitedError)


CANARY = "sk-or-v1-CANARY-5f1e2d3c4b5a69788796a5b4c3d2e1f0"


def test_the_key_never_reaches_logs_errors_or_reprs(
    openrouter_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Success and every failure path, all loggers at DEBUG: the canary key appears nowhere."""
    emulator = openrouter_emulator_factory(api_keys=(CANARY,), rpm=None, daily_limit=1)
    set_connection(
        monkeypatch,
        "or_canary",
        password=CANARY,
        host=emulator.base_url,
        extra={"x_title": "canary"},
    )
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    hook = OpenRouterHook("or_canary", retry_policy=FAST)
    texts += [repr(hook), repr(hook.get_conn()), str(hook.test_connection())]
    hook.get_rankings_daily("2025-03-01", "2025-03-01")
    echo = {"error": {"code": 400, "message": f"bad key {CANARY} in request"}}
    for kind, opts in [
        ("500", {}),
        ("502_html", {}),
        ("truncated", {}),
        ("reset", {}),
        ("bad_json", {}),
        ("429", {}),
        ("payload", {"status": 400, "body": echo}),
        ("payload", {"status": 403, "body": echo}),
        ("payload", {"body": {"data": [], "meta": {"as_of": CANARY}}}),
    ]:
        emulator.inject(kind, times=None, **opts)
        with pytest.raises(OpenRouterError) as info:
            hook.get_rankings_daily("2025-03-01", "2025-03-01")
        texts += [str(info.value), repr(info.value)]
        emulator.reset()
    hook.get_rankings_daily("2025-03-01", "2025-03-01")  # uses the one daily request
    with pytest.raises(OpenRouterError) as info:  # quota exhausted
        hook.get_rankings_daily("2025-03-02", "2025-03-02")
    texts.append(str(info.value))
    wrong = OpenRouterHook("or_canary_wrong", retry_policy=FAST)
    set_connection(monkeypatch, "or_canary_wrong", password=CANARY[::-1], host=emulator.base_url)
    texts.append(str(wrong.test_connection()))
    everything = "\n".join(texts + [r.getMessage() for r in caplog.records] + [caplog.text])
    assert (
        "invalid API key" in everything and "Internal Server Error" in everything
    )  # the paths really ran
    assert CANARY not in everything and CANARY[::-1] not in everything
    assert CANARY[8:30] not in everything


# ------------------------------------------------------------------ the as_of probe
PROBE_PATH = "/datasets/rankings-daily"


def probe_both_ways(
    hook: OpenRouterHook, day: date, **kwargs: Any
) -> tuple[probe.ProbeOutcome, probe.ProbeOutcome]:
    """The same probe through the sync driver, then through the async one."""
    return hook.probe_day(day, **kwargs), asyncio.run(hook.aprobe_day(day, **kwargs))


def test_probe_day_answers_for_the_day_and_its_lookback_sync_and_async(
    hook: OpenRouterHook, openrouter_emulator: Any
) -> None:
    openrouter_emulator.set_now(openrouter_emulator.now())  # one snapshot for both drivers
    yesterday = openrouter_emulator.last_complete_day()
    sync, async_ = probe_both_ways(hook, yesterday)
    assert (
        isinstance(sync, probe.Answered)
        and isinstance(async_, probe.Answered)
        and sync.result.complete
    )
    assert async_.result.complete and (sync.result.end_date, sync.result.as_of) == (
        async_.result.end_date,
        async_.result.as_of,
    )
    assert sync.result.rankings is not None and async_.result.rankings is not None
    assert (
        sync.result.rankings.rows == async_.result.rankings.rows
        and sync.result.rankings.rows[-1].model_permaslug == "other"
    )
    week_before = (
        yesterday - timedelta(days=7)
    ).isoformat()  # the rankings operator's lookback rides on it
    assert [r["params"] for r in openrouter_emulator.requests] == [
        {"start_date": week_before, "end_date": yesterday.isoformat()}
    ] * 2
    later, _ = probe_both_ways(
        hook, yesterday, settle=timedelta(days=2)
    )  # as_of cannot prove it yet
    assert (
        isinstance(later, probe.Answered)
        and not later.result.complete
        and later.result.as_of is not None
    )
    assert hook.request_count == 4


def test_probe_day_outcomes_of_refusals(hook: OpenRouterHook, openrouter_emulator: Any) -> None:
    last = openrouter_emulator.last_complete_day()
    day = last + timedelta(
        days=1
    )  # not served yet: the API answers the days before it, so not complete
    sync, async_ = probe_both_ways(hook, day)
    assert (
        isinstance(sync, probe.Answered)
        and not sync.result.complete
        and sync.result.end_date == last
    )
    far = last + timedelta(days=9)  # the whole window lies after the API's last day: it refuses it
    sync, async_ = probe_both_ways(hook, far)
    assert isinstance(sync, probe.NotServedYet) and isinstance(async_, probe.NotServedYet)
    assert sync.result == probe.ProbeResult(far, False, None, None) and "date" in (
        sync.api_message or ""
    )

    served = last
    openrouter_emulator.inject(
        "429", times=2, path=PROBE_PATH, retry_after=7200, message="Daily request limit exceeded"
    )
    sync, async_ = probe_both_ways(hook, served)
    assert isinstance(sync, probe.RetryAt) and isinstance(async_, probe.RetryAt)
    assert sync.moment is not None and sync.moment > datetime.now(timezone.utc) + timedelta(hours=1)
    assert "daily request quota is exhausted" in sync.reason

    openrouter_emulator.inject("503", times=4, path=PROBE_PATH)  # two attempts each (FAST policy)
    sync, async_ = probe_both_ways(hook, served)
    assert isinstance(sync, probe.TransientFailure) and isinstance(async_, probe.TransientFailure)
    assert "HTTP 503" in sync.reason


def test_probe_day_raises_what_no_later_probe_can_cure(
    openrouter_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, password="sk-or-wrong-000000", host=openrouter_emulator.base_url)
    day = openrouter_emulator.last_complete_day()
    with pytest.raises(AuthenticationError, match="invalid API key") as info:
        OpenRouterHook(retry_policy=FAST).probe_day(day)
    assert "sk-or-wrong-000000" not in str(info.value)
    with pytest.raises(AuthenticationError):
        asyncio.run(OpenRouterHook(retry_policy=FAST).aprobe_day(day))


def test_a_probe_deadline_bounds_that_call_only(
    hook: OpenRouterHook, openrouter_emulator: Any
) -> None:
    day = openrouter_emulator.last_complete_day()
    openrouter_emulator.inject("503", times=1, path=PROBE_PATH)
    slow = OpenRouterHook(
        retry_policy=RetryPolicy(max_attempts=3, backoff_base=5.0, backoff_max=5.0, jitter=0.0)
    )
    outcome = asyncio.run(slow.aprobe_day(day, deadline=1.0))  # the 5 s backoff does not fit in 1 s
    assert isinstance(outcome, probe.TransientFailure) and "after 1 attempt(s)" in outcome.reason
    assert (
        slow.get_conn().policy.deadline == RetryPolicy().deadline
    )  # the shared policy is untouched
    assert isinstance(
        slow.probe_day(day), probe.Answered
    )  # without a deadline the policy's applies
