"""The one HTTP path over real loopback HTTP: every failure mode, sync and async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.api import endpoints
from airflow_provider_openrouter.api.client import OpenRouterClient
from airflow_provider_openrouter.api.datasets import rankings_daily
from airflow_provider_openrouter.api.retry import RetryPolicy
from airflow_provider_openrouter.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    QueryTimeoutError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
)

FAST = RetryPolicy(
    max_attempts=3, max_rate_limit_retries=3, backoff_base=0.01, backoff_max=0.05, jitter=0.0
)
PATH = rankings_daily.PATH
PARAMS = {"start_date": "2025-03-01", "end_date": "2025-03-01"}


def make_client(
    emulator: Any, *, key: str = "sk-or-emulator", policy: RetryPolicy = FAST, **kwargs: Any
) -> OpenRouterClient:
    return OpenRouterClient(
        emulator.base_url, key, policy=policy, requests_per_minute=1000, **kwargs
    )


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Callable[[OpenRouterClient], Any]:
    """Run one GET through the sync driver or the async driver: both must behave the same."""
    if request.param == "sync":
        return lambda client: client.get(PATH, PARAMS)
    return lambda client: asyncio.run(client.aget(PATH, PARAMS))


def test_success_returns_json_and_counts_one_request(
    openrouter_emulator: Any, call: Callable
) -> None:
    client = make_client(openrouter_emulator)
    body = call(client)
    assert body["meta"]["start_date"] == "2025-03-01" and len(body["data"]) == 51
    assert client.request_count == 1 == openrouter_emulator.request_count(PATH)


@pytest.mark.parametrize("kind", ["500", "503", "502_html", "truncated", "reset", "bad_json"])
def test_transient_faults_are_retried_then_succeed(
    openrouter_emulator: Any, call: Callable, kind: str
) -> None:
    openrouter_emulator.inject(kind, times=1)
    client = make_client(openrouter_emulator)
    assert len(call(client)["data"]) == 51
    assert client.request_count == 2 == openrouter_emulator.request_count(PATH)


def test_persistent_html_502_ends_in_server_error_with_bounded_attempts(
    openrouter_emulator: Any, call: Callable
) -> None:
    openrouter_emulator.inject("502_html", times=None)
    client = make_client(openrouter_emulator)
    with pytest.raises(ServerError, match="HTTP 502.*text/html") as info:
        call(client)
    assert info.value.status == 502
    assert openrouter_emulator.request_count(PATH) == FAST.max_attempts


def test_persistent_bad_json_is_an_invalid_response(
    openrouter_emulator: Any, call: Callable
) -> None:
    openrouter_emulator.inject("bad_json", times=None)
    with pytest.raises(InvalidResponseError, match="not valid JSON"):
        call(make_client(openrouter_emulator))
    assert openrouter_emulator.request_count(PATH) == FAST.max_attempts


def test_dropped_connections_end_in_server_error(openrouter_emulator: Any, call: Callable) -> None:
    openrouter_emulator.inject("reset", times=None)
    with pytest.raises(ServerError, match="failed after 3 attempt"):
        call(make_client(openrouter_emulator))


def test_slow_answer_times_out_and_is_retried(openrouter_emulator: Any, call: Callable) -> None:
    openrouter_emulator.inject("slow", times=1, seconds=2.0)
    client = make_client(openrouter_emulator, timeout=0.5)
    assert len(call(client)["data"]) == 51
    assert client.request_count == 2


def test_absolute_deadline_stops_retries(openrouter_emulator: Any) -> None:
    openrouter_emulator.inject("500", times=None)
    policy = RetryPolicy(
        max_attempts=100, backoff_base=0.3, backoff_max=0.3, jitter=0.0, deadline=1.0
    )
    started = time.monotonic()
    with pytest.raises(ServerError):
        make_client(openrouter_emulator, policy=policy).get(PATH, PARAMS)
    assert time.monotonic() - started < 5
    assert 2 <= openrouter_emulator.request_count(PATH) <= 5


def test_bad_request_fails_at_once_with_the_api_message(
    openrouter_emulator: Any, call: Callable
) -> None:
    client = make_client(openrouter_emulator)
    with pytest.raises(BadRequestError) as info:
        client.get(PATH, {"start_date": "2025-03-01", "end_date": "2025-02-01"})
    assert info.value.status == 400 and info.value.api_message
    assert info.value.api_message in str(info.value) and "retrying will not help" in str(info.value)
    assert client.request_count == 1


def test_invalid_key_says_so(openrouter_emulator: Any, call: Callable) -> None:
    client = make_client(
        openrouter_emulator, key="sk-or-wrong-key", source="connection 'openrouter_default'"
    )
    with pytest.raises(
        AuthenticationError,
        match="invalid API key.*'openrouter_default'|'openrouter_default'.*invalid API key",
    ) as info:
        call(client)
    assert info.value.status == 401
    assert client.request_count == 1


def test_empty_key_is_refused_before_any_request(openrouter_emulator: Any) -> None:
    with pytest.raises(AuthenticationError, match="No API key"):
        make_client(openrouter_emulator, key="")
    assert openrouter_emulator.request_count() == 0


def test_query_timeout_is_not_retried_at_the_same_size(
    openrouter_emulator: Any, call: Callable
) -> None:
    openrouter_emulator.inject(
        "payload", status=408, body={"error": {"code": 408, "message": "Query timed out"}}
    )
    client = make_client(openrouter_emulator)
    with pytest.raises(QueryTimeoutError, match="smaller time range"):
        call(client)
    assert client.request_count == 1


def test_forbidden_is_an_authentication_error(openrouter_emulator: Any, call: Callable) -> None:
    openrouter_emulator.inject(
        "payload",
        status=403,
        body={"error": {"code": 403, "message": "Forbidden: management key required"}},
    )
    with pytest.raises(AuthenticationError, match="HTTP 403.*management key required") as info:
        call(make_client(openrouter_emulator))
    assert info.value.status == 403


@pytest.mark.parametrize("retry_after", ["seconds", "http-date"])
def test_minute_limit_waits_for_retry_after(
    openrouter_emulator_factory: Any, retry_after: str, call: Callable
) -> None:
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, retry_after=retry_after)
    emulator.inject("429", times=1, retry_after="1" if retry_after == "seconds" else None)
    if retry_after == "http-date":
        from email.utils import format_datetime

        emulator.reset()
        when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
        emulator.inject("429", times=1, retry_after=format_datetime(when, usegmt=True))
    client = make_client(emulator)
    started = time.monotonic()
    assert len(call(client)["data"]) == 51
    assert time.monotonic() - started >= 0.9
    assert client.request_count == 2


def test_429_without_retry_after_backs_off_then_gives_up(
    openrouter_emulator: Any, call: Callable
) -> None:
    openrouter_emulator.inject("429", times=None)
    with pytest.raises(RateLimitedError, match="rate limited 4 time") as info:
        call(make_client(openrouter_emulator))
    assert not isinstance(info.value, QuotaExhaustedError)
    assert info.value.retry_at is not None
    assert openrouter_emulator.request_count(PATH) == FAST.max_rate_limit_retries + 1


def test_429_waits_are_bounded_in_total(openrouter_emulator: Any) -> None:
    openrouter_emulator.inject("429", times=None)
    policy = RetryPolicy(
        max_rate_limit_retries=100,
        max_rate_limit_wait=0.5,
        backoff_base=0.1,
        backoff_max=0.1,
        jitter=0.0,
    )
    with pytest.raises(RateLimitedError):
        make_client(openrouter_emulator, policy=policy).get(PATH, PARAMS)
    assert 5 <= openrouter_emulator.request_count(PATH) <= 7


def test_real_minute_limit_is_honoured(openrouter_emulator_factory: Any) -> None:
    emulator = openrouter_emulator_factory(rpm=2, daily_limit=None)
    policy = RetryPolicy(max_rate_limit_retries=3, jitter=0.0)
    client = make_client(emulator, policy=policy)
    for _ in range(2):
        client.get(PATH, PARAMS)
    with pytest.raises(RateLimitedError):
        # a Retry-After of ~60 s does not fit a 2 s deadline: fail fast instead of hot-looping
        make_client(emulator, policy=RetryPolicy(deadline=2.0)).get(PATH, PARAMS)
    assert emulator.request_count(PATH, status=429) == 1


def test_daily_quota_raises_with_the_renewal_time(
    openrouter_emulator_factory: Any, call: Callable
) -> None:
    now = datetime(2026, 5, 12, 20, 0, tzinfo=timezone.utc)
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=1, now=now)
    client = make_client(emulator)
    call(client)
    before = datetime.now(timezone.utc)
    with pytest.raises(QuotaExhaustedError, match="daily request quota") as info:
        call(client)
    # the emulator advertises 4 h until its next UTC midnight
    assert (
        timedelta(hours=3, minutes=59)
        <= info.value.retry_at - before
        <= timedelta(hours=4, minutes=1)
    )
    assert emulator.request_count(PATH, status=429) == 1


def test_daily_quota_without_retry_after_waits_for_next_utc_midnight(
    openrouter_emulator_factory: Any,
) -> None:
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=1, retry_after=None)
    fixed = datetime(2026, 5, 12, 20, 0, tzinfo=timezone.utc)
    client = make_client(emulator, clock=lambda: fixed)
    client.get(PATH, PARAMS)
    with pytest.raises(QuotaExhaustedError) as info:
        client.get(PATH, PARAMS)
    assert info.value.retry_at == datetime(2026, 5, 13, tzinfo=timezone.utc)


def test_headers_attribute_the_calling_app(openrouter_emulator: Any) -> None:
    client = make_client(
        openrouter_emulator,
        headers={"HTTP-Referer": "https://example.org", "X-OpenRouter-Title": "Lake"},
    )
    assert client._headers["HTTP-Referer"] == "https://example.org"
    assert client._headers["User-Agent"].startswith("airflow-provider-openrouter/")
    assert client.get(endpoints.KEY_PATH)["data"]["label"]
