"""OpenRouterAsOfTrigger against the emulator over loopback, run as the triggerer runs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from airflow.sdk.serde import deserialize, serialize

from airflow_provider_openrouter.runtime.probe import rankings_from_record
from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger
from airflow_provider_openrouter.windows.intervals import Window

from .conftest import KEY, Api, next_whole_second, run_trigger, settle_to, utc_today

FAST = {"poke_interval": 0.1, "max_wait": 0.2}


def in_(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_serialize_round_trips_through_airflow_serde() -> None:
    trigger = OpenRouterAsOfTrigger(
        "openrouter_default",
        "2025-07-04",
        datetime(2025, 7, 6, 3, tzinfo=timezone.utc),
        settle_seconds=900,
        poke_interval=60,
        max_wait=600,
        not_before="2025-07-05T00:20:00+00:00",
        prior_probes=2,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_openrouter.triggers.as_of.OpenRouterAsOfTrigger"
    restored = OpenRouterAsOfTrigger(**deserialize(serialize(kwargs)))
    assert restored.serialize() == (classpath, kwargs)
    assert restored.deadline == datetime(2025, 7, 6, 3, tzinfo=timezone.utc)
    assert restored.complete_at == datetime(2025, 7, 5, 0, 15, tzinfo=timezone.utc)
    assert restored.prior_probes == 2 and restored.not_before == datetime(
        2025, 7, 5, 0, 20, tzinfo=timezone.utc
    )


def test_naive_deadline_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        OpenRouterAsOfTrigger("c", "2025-07-04", "2025-07-06T00:00:00")


def test_a_complete_day_succeeds_with_one_probe_for_that_day_and_its_lookback(api: Api) -> None:
    target = utc_today() - timedelta(days=1)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(30), **FAST))
    assert event["status"] == "success", event
    assert (event["target_day"], event["end_date"], event["probes"], event["requests"]) == (
        target.isoformat(),
        target.isoformat(),
        1,
        1,
    )
    assert [r["params"] for r in api.emulator.requests] == [
        {"start_date": (target - timedelta(days=7)).isoformat(), "end_date": target.isoformat()}
    ]  # + the lookback
    assert event["base_url"] == api.emulator.base_url
    rankings = rankings_from_record(event["probe"], Window(target, target), api.conn_id)
    assert rankings is not None and rankings.rows[-1].model_permaslug == "other"
    assert KEY not in repr(event)


def test_no_request_before_the_completion_instant(api: Api) -> None:
    target = utc_today() - timedelta(days=1)
    complete_at = next_whole_second(timedelta(seconds=2))
    trigger = OpenRouterAsOfTrigger(
        api.conn_id,
        target.isoformat(),
        in_(30),
        settle_seconds=settle_to(complete_at, target).total_seconds(),
        **FAST,
    )
    event = run_trigger(trigger)
    assert event["status"] == "success", event
    assert api.probe_times() and min(api.probe_times()) >= complete_at
    assert datetime.fromisoformat(event["as_of"]) >= complete_at


def test_a_deadline_before_the_completion_instant_times_out_without_a_request(api: Api) -> None:
    today = utc_today()
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, today.isoformat(), in_(5), **FAST))
    assert event["status"] == "timeout" and event["probes"] == 0 and event["requests"] == 0
    assert "no request was made" in event["message"]
    assert api.probes() == 0


def test_a_day_not_served_yet_is_probed_with_backoff_until_the_deadline(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(ingest_lag=timedelta(days=3))  # the API's last complete day is 4 days ago
    target = utc_today() - timedelta(days=1)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(2.5), **FAST))
    assert event["status"] == "timeout", event
    # A probe cut short by the deadline may or may not have reached the API: bounds, not equality.
    assert event["requests"] <= api.probes() <= event["probes"] and api.probes() >= 2
    # the probe's window (the day and its lookback) reaches days the API serves: it answers with its
    # last day, before the target
    assert "not complete yet" in event["message"] and event["probe"] is None
    assert event["end_date"] == (utc_today() - timedelta(days=4)).isoformat()


def test_an_answer_with_as_of_before_the_completion_instant_is_not_complete(api: Api) -> None:
    target = utc_today() - timedelta(days=1)
    complete_at = next_whole_second(-timedelta(seconds=10))  # already past by the wall clock
    api.emulator.set_now(complete_at - timedelta(seconds=1))  # but the API's snapshot predates it
    trigger = OpenRouterAsOfTrigger(
        api.conn_id,
        target.isoformat(),
        in_(2.0),
        settle_seconds=settle_to(complete_at, target).total_seconds(),
        **FAST,
    )
    event = run_trigger(trigger)
    assert event["status"] == "timeout" and event["probes"] >= 1 and event["probe"] is None
    assert (
        event["end_date"] == target.isoformat()
    )  # the day is served, but as_of does not prove it final
    assert (
        datetime.fromisoformat(event["as_of"]) < complete_at
        and "not complete yet" in event["message"]
    )


def test_daily_quota_exhaustion_waits_until_retry_at(api: Api) -> None:
    api.emulator.inject(
        "429",
        times=1,
        path=PROBE,
        retry_after=1,
        message="Daily request limit exceeded: 500 requests per day",
    )
    target = utc_today() - timedelta(days=1)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(30), **FAST))
    assert event["status"] == "success", event
    assert (event["probes"], event["requests"]) == (2, 2)
    first, second = api.probe_times()
    assert second - first >= timedelta(seconds=1)  # not before the advertised retry time


def test_quota_renewing_after_the_deadline_times_out_at_once(api: Api) -> None:
    api.emulator.inject(
        "429", times=None, path=PROBE, retry_after=7200, message="Rate limit exceeded"
    )
    target = utc_today() - timedelta(days=1)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(600), **FAST))
    assert event["status"] == "timeout" and event["probes"] == 1 and api.probes() == 1
    assert "accepts requests again at" in event["message"]


def test_a_rate_limit_wait_that_overruns_the_deadline_times_out_at_once(api: Api) -> None:
    api.emulator.inject(
        "429", times=None, path=PROBE, retry_after=30
    )  # per-minute limit, 30 s to wait
    target = utc_today() - timedelta(days=1)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(10), **FAST))
    assert event["status"] == "timeout" and event["probes"] == 1 and api.probes() == 1
    assert "accepts requests again at" in event["message"]


def test_a_rejected_key_is_an_error_event_without_the_key(api_factory: Callable[..., Api]) -> None:
    api = api_factory(key="sk-or-wrong-key-123456")
    target = utc_today() - timedelta(days=1)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(30), **FAST))
    assert event["status"] == "error" and "invalid API key" in event["message"]
    assert "sk-or-wrong-key-123456" not in repr(event)


def test_an_invalid_answer_is_an_error_event(api: Api) -> None:
    target = utc_today() - timedelta(days=1)
    body = {
        "data": [{"date": target.isoformat(), "model_permaslug": "x", "total_tokens": 1.5}],
        "meta": {
            "as_of": datetime.now(timezone.utc).isoformat(),
            "start_date": target.isoformat(),
            "end_date": target.isoformat(),
            "version": "v1",
        },
    }
    api.emulator.inject("payload", times=None, path=PROBE, body=body)
    event = run_trigger(OpenRouterAsOfTrigger(api.conn_id, target.isoformat(), in_(30), **FAST))
    assert (
        event["status"] == "error" and "total_tokens" in event["message"] and event["probes"] == 1
    )


def test_an_unknown_connection_is_an_error_event() -> None:
    target = utc_today() - timedelta(days=1)
    event = run_trigger(
        OpenRouterAsOfTrigger("openrouter_does_not_exist", target.isoformat(), in_(30), **FAST)
    )
    assert event["status"] == "error" and "openrouter_does_not_exist" in event["message"]


PROBE = "/datasets/rankings-daily"
