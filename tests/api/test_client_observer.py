"""The client's ``on_request`` observer (how the hook's metrics see every attempt), over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_openrouter.api.client import OpenRouterClient
from airflow_provider_openrouter.api.datasets import rankings_daily
from airflow_provider_openrouter.api.retry import RetryPolicy
from airflow_provider_openrouter.exceptions import BadRequestError

FAST = RetryPolicy(
    max_attempts=3, max_rate_limit_retries=3, backoff_base=0.01, backoff_max=0.05, jitter=0.0
)
PARAMS = {"start_date": "2025-03-01", "end_date": "2025-03-01"}


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_every_attempt_is_reported_with_its_status(openrouter_emulator: Any, driver: str) -> None:
    seen: list[tuple[str, str, int | None]] = []
    client = OpenRouterClient(
        openrouter_emulator.base_url,
        "sk-or-emulator",
        policy=FAST,
        requests_per_minute=1000,
        on_request=lambda *attempt: seen.append(attempt),
    )
    openrouter_emulator.inject("429", times=1, retry_after=0)
    openrouter_emulator.inject("503", times=1)
    openrouter_emulator.inject("reset", times=1)
    if driver == "sync":
        client.get(rankings_daily.PATH, PARAMS)
    else:
        asyncio.run(client.aget(rankings_daily.PATH, PARAMS))
    path = rankings_daily.PATH
    assert seen == [("GET", path, 429), ("GET", path, 503), ("GET", path, None), ("GET", path, 200)]


def test_a_failing_observer_never_fails_the_call_nor_hides_its_error(
    openrouter_emulator: Any,
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("metrics backend down")

    client = OpenRouterClient(
        openrouter_emulator.base_url,
        "sk-or-emulator",
        policy=FAST,
        requests_per_minute=1000,
        on_request=broken,
    )
    assert client.get(rankings_daily.PATH, PARAMS)["data"]
    with pytest.raises(BadRequestError):
        client.get(rankings_daily.PATH, {"start_date": "2025-03-02", "end_date": "2025-03-01"})
