"""OpenRouterSessionCostTrigger against the emulator over loopback: waits, probes, deadlines."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone

import pytest

from airflow_provider_openrouter.triggers.session_cost import OpenRouterSessionCostTrigger

from .conftest import Api, run_trigger

PATH = "/datasets/session-cost"


def now() -> datetime:
    return datetime.now(timezone.utc)


def trigger(
    api: Api, after: object, *, not_before: datetime, deadline: datetime, **kwargs: object
) -> OpenRouterSessionCostTrigger:
    return OpenRouterSessionCostTrigger(
        openrouter_conn_id=api.conn_id,
        after=None if after is None else str(after),
        deadline=deadline,
        not_before=not_before,
        poke_interval=kwargs.pop("poke_interval", 0.2),
        max_wait=kwargs.pop("max_wait", 0.3),
        **kwargs,
    )


def test_no_request_before_not_before_then_one_probe_finds_the_snapshot(api: Api) -> None:
    current = api.emulator.session_cost_window_end()
    assert current is not None
    start = now() + timedelta(seconds=1.5)
    event = run_trigger(
        trigger(
            api,
            current - timedelta(days=7),
            not_before=start,
            deadline=start + timedelta(seconds=30),
        )
    )
    assert event["status"] == "success" and event["probes"] == 1 and event["requests"] == 1
    assert event["meta"]["window_end_date"] == current.isoformat() and event["after"] == str(
        current - timedelta(days=7)
    )
    (probe,) = api.emulator.requests
    assert probe["path"].endswith(PATH) and probe["params"] == {"limit": "1", "offset": "0"}
    assert datetime.fromisoformat(probe["time"]) >= start


def test_a_snapshot_that_cannot_exist_before_the_deadline_costs_nothing(api: Api) -> None:
    event = run_trigger(
        trigger(
            api,
            "2026-01-05",
            not_before=now() + timedelta(days=6),
            deadline=now() + timedelta(seconds=5),
        )
    )
    assert (
        event["status"] == "timeout"
        and event["probes"] == 0
        and "no request was made" in event["message"]
    )
    assert api.emulator.requests == []


def test_keeps_probing_until_the_new_snapshot_is_published(api_factory: Callable[..., Api]) -> None:
    real = api_factory()
    end = real.emulator.session_cost_window_end()
    assert end is not None
    published = datetime.combine(end + timedelta(days=1), time(2), tzinfo=timezone.utc)
    api = api_factory(
        now=published - timedelta(hours=1)
    )  # the emulator still serves the snapshot before
    assert api.emulator.session_cost_window_end() == end - timedelta(days=7)
    timer = threading.Timer(1.0, api.emulator.set_now, args=(published + timedelta(minutes=5),))
    timer.start()
    try:
        event = run_trigger(
            trigger(
                api,
                end - timedelta(days=7),
                not_before=now(),
                deadline=now() + timedelta(seconds=30),
            )
        )
    finally:
        timer.cancel()
    assert event["status"] == "success" and event["meta"]["window_end_date"] == end.isoformat()
    assert event["probes"] >= 2 and event["probes"] == api.emulator.request_count(PATH)


def test_the_deadline_ends_the_wait_while_no_snapshot_is_published(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(session_cost_published=False)
    event = run_trigger(
        trigger(api, None, not_before=now(), deadline=now() + timedelta(seconds=1.5))
    )
    assert event["status"] == "timeout" and event["probes"] >= 1
    assert event["meta"]["window_end_date"] is None and "no snapshot published" in event["message"]


def test_a_rejected_key_is_an_error_without_the_key(api_factory: Callable[..., Api]) -> None:
    api = api_factory(key="sk-or-wrong-key-123456")
    event = run_trigger(
        trigger(api, None, not_before=now(), deadline=now() + timedelta(seconds=10))
    )
    assert event["status"] == "error" and "invalid API key" in event["message"]
    assert "sk-or-wrong-key-123456" not in str(event)


def test_serialises_to_its_own_classpath_and_back(api: Api) -> None:
    original = trigger(api, "2026-11-16", not_before=now(), deadline=now() + timedelta(hours=1))
    classpath, kwargs = original.serialize()
    assert (
        classpath
        == "airflow_provider_openrouter.triggers.session_cost.OpenRouterSessionCostTrigger"
    )
    again = OpenRouterSessionCostTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    with pytest.raises(ValueError, match="has no timezone"):
        OpenRouterSessionCostTrigger(
            api.conn_id, None, deadline="2026-12-01T00:00:00", not_before=now()
        )
