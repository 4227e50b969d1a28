"""OpenRouterHook's analytics methods through real Airflow connections, against the emulator over loopback."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.analytics.query import AnalyticsQuery
from airflow_provider_openrouter.api.retry import RetryPolicy
from airflow_provider_openrouter.exceptions import (
    AuthenticationError,
    InvalidParameterError,
    InvalidResponseError,
    OpenRouterError,
    QueryTimeoutError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.testing import Emulator

FAST = RetryPolicy(
    max_attempts=2, max_rate_limit_retries=1, backoff_base=0.01, backoff_max=0.02, jitter=0.0
)
KEY, MGMT = "sk-or-emulator", "sk-or-mgmt-emulator"
NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
MAY_6 = datetime(2025, 5, 6, tzinfo=timezone.utc)
TWO_DAYS = (MAY_6, MAY_6 + timedelta(days=2))
META, QUERY = "/analytics/meta", "/analytics/query"


def set_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, emulator: Emulator, key: str = KEY, **extra: Any
) -> str:
    extra.setdefault("requests_per_minute", 10000)  # no in-process pacing across the many queries
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {"conn_type": "openrouter", "host": emulator.base_url, "password": key, "extra": extra}
        ),
    )
    return conn_id


@pytest.fixture
def em(openrouter_emulator: Emulator) -> Emulator:
    openrouter_emulator.set_now(NOW)
    return openrouter_emulator


@pytest.fixture
def hook(em: Emulator, monkeypatch: pytest.MonkeyPatch) -> OpenRouterHook:
    return OpenRouterHook(
        set_connection(monkeypatch, "or_analytics", em, management_api_key=MGMT), retry_policy=FAST
    )


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def bodies(em: Emulator) -> list[dict[str, Any]]:
    return [e["body"] for e in em.requests if e["path"].endswith(QUERY)]


def test_meta_is_fetched_once_per_hook(
    hook: OpenRouterHook, em: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = hook.get_analytics_meta()
    assert hook.get_analytics_meta() is meta
    assert {"request_count", "cost", "avg_latency_ms"} <= set(meta.metric_names) and meta.metric(
        "avg_latency_ms"
    ).is_rate  # type: ignore[union-attr]
    hook.query_analytics(["cost"], time_range=TWO_DAYS)
    hook.query_analytics(["request_count"], ["model"], granularity="day", time_range=TWO_DAYS)
    assert em.request_count(META) == 1 and em.request_count(QUERY) == 2 and hook.request_count == 3
    OpenRouterHook("or_analytics").get_analytics_meta()  # a new hook (a new task run) asks again
    assert em.request_count(META) == 2


def test_management_key_is_used_for_analytics_only(hook: OpenRouterHook, em: Emulator) -> None:
    assert (
        hook.get_analytics_client() is not hook.get_conn()
        and hook.get_analytics_client().key_fingerprint != hook.get_conn().key_fingerprint
    )
    hook.get_rankings_daily("2025-05-01", "2025-05-01")  # the plain key still serves the datasets
    hook.query_analytics(["cost"], time_range=TWO_DAYS)
    assert hook.request_count == 3 and em.request_count(status=200) == 3


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (
            {"metrics": ["cost", "spend"]},
            InvalidParameterError,
            "metric 'spend' is not available; valid metrics: request_count, prompt_tokens",
        ),
        (
            {"metrics": ["cost"], "granularity": "year"},
            InvalidParameterError,
            "valid granularities: minute, hour, day, week, month",
        ),
        (
            {"metrics": ["cost"], "filters": [{"field": "app", "operator": "in", "value": 1001}]},
            InvalidParameterError,
            "takes a list",
        ),
        (
            {"metrics": ["cost"], "filters": [{"field": "user", "operator": "eq", "value": "u"}]},
            InvalidParameterError,
            "valid fields: model, provider, app, api_key_hash",
        ),
    ],
)
def test_invalid_queries_cost_no_query_request(
    hook: OpenRouterHook, em: Emulator, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        hook.query_analytics(**kwargs)
    assert em.request_count(QUERY) == 0 and em.request_count(META) == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"dimensions": ["model", "app", "provider"]}, "at most 2"),
        ({"filters": [("model", "eq", "m")] * 21}, "at most 20"),
        ({"time_range": ("2025-05-06T00:00Z", "2025-05-07T00:00:00Z")}, "seconds included"),
        ({"time_range": (datetime(2025, 5, 6), datetime(2025, 5, 7))}, "no timezone"),
    ],
)
def test_malformed_queries_cost_no_request_at_all(
    hook: OpenRouterHook, em: Emulator, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        hook.query_analytics(["cost"], **kwargs)
    assert em.request_count() == 0


def test_complete_queries_need_a_time_range_before_any_request(
    hook: OpenRouterHook, em: Emulator
) -> None:
    with pytest.raises(InvalidParameterError, match="needs a time_range"):
        hook.query_analytics_complete(AnalyticsQuery(["cost"]))
    assert em.request_count() == 0


def test_a_plain_key_gets_a_message_saying_where_the_management_key_goes(
    em: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = OpenRouterHook(set_connection(monkeypatch, "or_plain", em), retry_policy=FAST)
    with pytest.raises(AuthenticationError) as info:
        hook.query_analytics(["cost"], time_range=TWO_DAYS)
    message = str(info.value)
    assert (
        info.value.status == 403 and "needs a management key" in message and "'or_plain'" in message
    )
    assert (
        "'management_api_key'" in message
        and "'management_conn_id'" in message
        and "Management keys" in message
    )
    assert em.request_count(META, status=403) == 1 and em.request_count(QUERY) == 0
    hook.get_rankings_daily("2025-05-01", "2025-05-01")  # the key itself is fine for the datasets


def test_a_plain_key_in_the_management_extra_and_a_wrong_one(
    em: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = OpenRouterHook(
        set_connection(monkeypatch, "or_mixed", em, management_api_key=KEY), retry_policy=FAST
    )
    with pytest.raises(
        AuthenticationError,
        match="refused the key in extra 'management_api_key' of connection 'or_mixed' .*not a management key",
    ):
        hook.get_analytics_meta()
    hook = OpenRouterHook(
        set_connection(monkeypatch, "or_revoked", em, management_api_key="sk-or-mgmt-revoked"),
        retry_policy=FAST,
    )
    with pytest.raises(
        AuthenticationError,
        match="rejected the management key in extra 'management_api_key' .*invalid or revoked",
    ) as info:
        hook.get_analytics_meta()
    assert info.value.status == 401 and "sk-or-mgmt-revoked" not in str(info.value)


def test_management_key_from_a_separate_connection(
    openrouter_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    secret = "sk-or-mgmt-separate-7f3e9a1c"
    em = openrouter_emulator_factory(management_keys=(secret,), rpm=None, daily_limit=None, now=NOW)
    set_connection(monkeypatch, "or_mgmt", em, key=secret)
    hook = OpenRouterHook(
        set_connection(monkeypatch, "or_main", em, management_conn_id="or_mgmt"), retry_policy=FAST
    )
    assert hook.query_analytics(["request_count"], time_range=TWO_DAYS).rows[0]["request_count"] > 0
    assert "connection 'or_mgmt'" in hook.get_analytics_client().source and redact(secret) == "***"


def test_a_management_key_as_the_only_key_works_too(
    em: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = OpenRouterHook(
        set_connection(monkeypatch, "or_only_mgmt", em, key=MGMT), retry_policy=FAST
    )
    assert hook.get_analytics_client() is hook.get_conn()
    assert hook.query_analytics(["cost"], time_range=TWO_DAYS).rows and hook.request_count == 2


def test_truncated_answers_are_split_until_complete(hook: OpenRouterHook, em: Emulator) -> None:
    query = AnalyticsQuery(
        ["request_count", "cost"],
        ["model", "app"],
        granularity="hour",
        time_range=TWO_DAYS,
        limit=40,
    )
    single = hook.execute_analytics_query(query)
    assert single.incomplete and len(single.rows) == 40  # what one request gives: cut, and flagged
    result = hook.query_analytics_complete(query)
    truth = hook.execute_analytics_query(
        AnalyticsQuery(
            query.metrics, query.dimensions, granularity="hour", time_range=TWO_DAYS, limit=5000
        )
    )
    assert not truth.incomplete and len(truth.rows) > 100
    assert (
        not result.incomplete
        and len(result.slices) > 2
        and canonical(result.rows) == canonical(truth.rows)
    )
    ranges = [b["time_range"] for b in bodies(em)[1:-1]]  # the requests of query_analytics_complete
    assert ranges[0] == {"start": "2025-05-06T00:00:00Z", "end": "2025-05-08T00:00:00Z"}
    assert all(
        r["start"].endswith(":00:00Z") and r["end"].endswith(":00:00Z") for r in ranges
    )  # hour-aligned
    assert [s.to_json() for s in result.slices] == [
        r for r in ranges if r in [s.to_json() for s in result.slices]
    ]


def test_408_is_retried_with_smaller_slices(hook: OpenRouterHook, em: Emulator) -> None:
    query = AnalyticsQuery(
        ["request_count", "cost"], ["model"], granularity="hour", time_range=TWO_DAYS
    )
    truth = hook.execute_analytics_query(query)
    em.set_analytics_timeout_span(timedelta(hours=12))
    with pytest.raises(QueryTimeoutError, match="Ask for a smaller time range"):
        hook.execute_analytics_query(query)
    result = hook.query_analytics_complete(query)
    assert [s.span for s in result.slices] == [timedelta(hours=12)] * 4 and canonical(
        result.rows
    ) == canonical(truth.rows)
    assert (
        em.request_count(QUERY, status=408) == 3 and em.request_count(QUERY, status=200) == 5
    )  # a 408 is not retried as is
    em.set_analytics_timeout_span(timedelta(minutes=30))
    with pytest.raises(QueryTimeoutError, match="cannot be split further"):
        hook.query_analytics_complete(query)


def test_rate_metric_splits_refused_without_granularity(hook: OpenRouterHook, em: Emulator) -> None:
    query = AnalyticsQuery(
        ["avg_latency_ms", "request_count"], ["model", "provider"], time_range=TWO_DAYS, limit=8
    )
    with pytest.raises(
        OpenRouterError,
        match="rate metric\\(s\\) avg_latency_ms are averaged.*Query with a granularity",
    ):
        hook.query_analytics_complete(query)
    assert em.request_count(QUERY) == 1
    hourly = AnalyticsQuery(
        ["avg_latency_ms", "request_count"],
        ["model"],
        granularity="hour",
        time_range=TWO_DAYS,
        limit=30,
    )
    result = hook.query_analytics_complete(hourly)
    truth = hook.execute_analytics_query(
        AnalyticsQuery(hourly.metrics, hourly.dimensions, granularity="hour", time_range=TWO_DAYS)
    )
    assert len(result.slices) > 1 and canonical(result.rows) == canonical(truth.rows)


def test_costs_are_exact_decimals(hook: OpenRouterHook, em: Emulator) -> None:
    window = (datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 6, 1, tzinfo=timezone.utc))
    daily = hook.query_analytics(
        ["cost", "total_tokens"], granularity="day", time_range=window, limit=1000
    )
    total = hook.query_analytics(["cost", "total_tokens"], time_range=window).rows[0]
    assert len(daily.rows) == 151 and all(
        type(r["cost"]) is Decimal and type(r["total_tokens"]) is int for r in daily.rows
    )
    assert (
        sum(r["cost"] for r in daily.rows) == total["cost"]
        and sum(r["total_tokens"] for r in daily.rows) == total["total_tokens"]
    )
    assert total["cost"].as_tuple().exponent == -15 and len(total["cost"].as_tuple().digits) > 17
    lossy = [r["cost"] for r in daily.rows if Decimal(repr(float(r["cost"]))) != r["cost"]]
    assert len(lossy) > 50  # decoded as floats, most daily costs would already have lost digits
    em.set_analytics_timeout_span(timedelta(days=40))  # force slices, whose exact sums are merged
    merged = hook.query_analytics_complete(
        AnalyticsQuery(["cost", "total_tokens"], time_range=window), min_slice=timedelta(days=1)
    )
    assert len(merged.slices) == 4 and merged.rows == [total]


def test_invalid_answers_are_located(hook: OpenRouterHook, em: Emulator) -> None:
    hook.get_analytics_meta()
    em.inject(
        "payload",
        path=QUERY,
        body={
            "data": {
                "data": [{"cost": "12"}],
                "metadata": {"query_time_ms": 1, "row_count": 1, "truncated": False},
            }
        },
    )
    with pytest.raises(InvalidResponseError) as info:
        hook.query_analytics(["cost"], time_range=TWO_DAYS)
    assert (info.value.field, info.value.row) == ("cost", 0)


CANARY = "sk-or-mgmt-v1-CANARY-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def test_the_management_key_never_reaches_logs_errors_or_reprs(
    openrouter_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Success and every failure path, all loggers at DEBUG: the canary management key appears nowhere."""
    from airflow.sdk._shared.secrets_masker import redact

    emulator = openrouter_emulator_factory(
        management_keys=(CANARY,), rpm=None, daily_limit=None, now=NOW
    )
    set_connection(monkeypatch, "or_canary", emulator, management_api_key=CANARY, x_title="canary")
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    hook = OpenRouterHook("or_canary", retry_policy=FAST)
    texts += [repr(hook), repr(hook.get_analytics_client()), repr(hook.get_analytics_meta())]
    texts.append(repr(hook.query_analytics(["cost"], ["api_key_hash"], time_range=TWO_DAYS)))
    assert redact(f"x {CANARY} y") == "x *** y"  # registered with Airflow's secrets masker
    echo = {"error": {"code": 400, "message": f"bad key {CANARY} in request"}}
    leaky = {
        "data": {
            "data": [{"cost": CANARY}],
            "metadata": {"query_time_ms": 1, "row_count": 1, "truncated": False},
        }
    }
    for kind, opts in [
        ("500", {}),
        ("502_html", {}),
        ("truncated", {}),
        ("reset", {}),
        ("bad_json", {}),
        ("429", {}),
        ("payload", {"status": 400, "body": echo}),
        ("payload", {"status": 403, "body": echo}),
        ("payload", {"status": 401, "body": echo}),
        ("payload", {"status": 408, "body": echo}),
        ("payload", {"body": leaky}),
    ]:
        emulator.inject(kind, times=None, path=QUERY, **opts)
        with pytest.raises(OpenRouterError) as info:
            hook.query_analytics(["cost"], time_range=TWO_DAYS)
        texts += [str(info.value), repr(info.value), str(info.value.__cause__ or "")]
        emulator.reset()
    emulator.set_analytics_timeout_span(timedelta(minutes=30))
    with pytest.raises(QueryTimeoutError) as info:
        hook.query_analytics_complete(AnalyticsQuery(["cost"], time_range=TWO_DAYS))
    texts.append(str(info.value))
    set_connection(monkeypatch, "or_canary_wrong", emulator, management_api_key=CANARY[::-1])
    with pytest.raises(AuthenticationError) as info:
        OpenRouterHook("or_canary_wrong", retry_policy=FAST).get_analytics_meta()
    texts += [str(info.value), str(info.value.__cause__)]
    everything = "\n".join(texts + [r.getMessage() for r in caplog.records] + [caplog.text])
    assert (
        "Internal Server Error" in everything
        and "invalid or revoked" in everything
        and "timed out" in everything
    )
    assert "bad key *** in request" in everything  # the echo path really ran, scrubbed
    assert (
        CANARY not in everything
        and CANARY[::-1] not in everything
        and CANARY[10:40] not in everything
    )
