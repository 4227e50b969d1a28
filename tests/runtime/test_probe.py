"""The pure parts: probe evaluation, backoff, the reusable probe record, event validation, memory values."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_openrouter.compat import AirflowException
from airflow_provider_openrouter.exceptions import BadRequestError, InvalidResponseError
from airflow_provider_openrouter.runtime.as_of_memory import SeenAsOf, public_base_url
from airflow_provider_openrouter.runtime.probe import (
    PROBE_MAX_AGE,
    PROBE_XCOM_KEY,
    evaluate_probe,
    is_not_served_yet,
    next_probe_delay,
    probe_record,
    rankings_from_record,
    reusable_probe,
)
from airflow_provider_openrouter.sensors.as_of import validate_event
from airflow_provider_openrouter.testing.dataset import rankings_daily_rows
from airflow_provider_openrouter.windows.intervals import Window

DAY = date(2025, 7, 4)
MIDNIGHT = datetime(2025, 7, 5, tzinfo=timezone.utc)
FETCHED = datetime(2025, 7, 5, 0, 30, tzinfo=timezone.utc)


def answer(
    as_of: datetime, end: date = DAY, start: date = DAY - timedelta(days=7)
) -> dict[str, Any]:
    """The API's answer to the probe's window (the target and the 7 days before it; rows of the target only)."""
    rows = [] if end < DAY else rankings_daily_rows(DAY, 0)
    return {
        "data": rows,
        "meta": {
            "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "version": "v1",
        },
    }


@pytest.mark.parametrize(
    ("as_of", "end", "settle", "complete"),
    [
        (MIDNIGHT, DAY, timedelta(0), True),  # exactly at the instant
        (MIDNIGHT - timedelta(seconds=1), DAY, timedelta(0), False),  # a second early
        (MIDNIGHT + timedelta(minutes=10), DAY, timedelta(minutes=15), False),  # inside settle
        (MIDNIGHT + timedelta(minutes=15), DAY, timedelta(minutes=15), True),
        (MIDNIGHT + timedelta(days=2), DAY, timedelta(0), True),
    ],
)
def test_completion_needs_as_of_past_the_instant(
    as_of: datetime, end: date, settle: timedelta, complete: bool
) -> None:
    result = evaluate_probe(answer(as_of, end), DAY, settle)
    assert result.complete is complete
    assert (result.rankings is not None) is complete
    if complete:
        assert result.rankings is not None and result.rankings.rows[-1].model_permaslug == "other"


def test_completion_needs_end_date_to_reach_the_day() -> None:
    result = evaluate_probe(
        answer(
            MIDNIGHT + timedelta(hours=5),
            end=DAY - timedelta(days=1),
            start=DAY - timedelta(days=1),
        ),
        DAY,
    )
    assert not result.complete and result.end_date == DAY - timedelta(days=1)
    assert "not complete yet" in result.describe()


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        {"data": []},
        {"data": [], "meta": "x"},
        {
            "data": [],
            "meta": {
                "as_of": "yesterday",
                "start_date": "2025-07-04",
                "end_date": "2025-07-04",
                "version": "v1",
            },
        },
    ],
)
def test_a_malformed_answer_never_counts_as_complete(payload: Any) -> None:
    with pytest.raises(InvalidResponseError):
        evaluate_probe(payload, DAY)


def test_a_complete_answer_with_bad_rows_is_rejected() -> None:
    payload = answer(MIDNIGHT)
    payload["data"][0]["total_tokens"] = "12.5"
    with pytest.raises(InvalidResponseError, match="total_tokens"):
        evaluate_probe(payload, DAY)


def test_only_a_400_about_dates_means_not_served_yet() -> None:
    assert is_not_served_yet(
        BadRequestError(
            "x",
            status=400,
            api_message="Invalid date window: start_date 2025-07-04 is after end_date",
        )
    )
    assert not is_not_served_yet(BadRequestError("x", status=400, api_message="Invalid sort"))
    assert not is_not_served_yet(BadRequestError("x", status=404, api_message="Not Found"))
    assert not is_not_served_yet(BadRequestError("x", status=400, api_message=None))


@pytest.mark.parametrize(
    ("overdue", "expected"),
    [
        (-3600, 60.0),
        (0, 60.0),
        (30, 60.0),
        (120, 120.0),
        (1000, 1000.0),
        (5000, 3600.0),
        (10**6, 3600.0),
    ],
)
def test_backoff_grows_with_how_overdue_the_day_is(overdue: int, expected: float) -> None:
    assert (
        next_probe_delay(MIDNIGHT + timedelta(seconds=overdue), MIDNIGHT, 60.0, 3600.0) == expected
    )


def complete_result() -> Any:
    return evaluate_probe(answer(MIDNIGHT + timedelta(hours=1)), DAY)


def test_probe_record_round_trips_into_the_same_rankings() -> None:
    result = complete_result()
    record = probe_record(result, "http://127.0.0.1:1/api/v1", "openrouter_default", FETCHED)
    assert record["window"] == {
        "start": "2025-06-27",
        "end": "2025-07-04",
    }  # the target and its lookback
    again = rankings_from_record(
        record, Window(DAY, DAY), "openrouter_default", now=FETCHED + timedelta(minutes=1)
    )
    assert (
        again is not None
        and again.rows == result.rankings.rows
        and again.meta.raw == result.rankings.meta.raw
    )
    assert not again.clamped
    lookback = rankings_from_record(
        record,
        Window(DAY - timedelta(days=7), DAY),
        "openrouter_default",
        now=FETCHED + timedelta(minutes=1),
    )
    assert (
        lookback is not None and lookback.rows == result.rankings.rows
    )  # any window inside the probe's
    assert (
        rankings_from_record(
            record,
            Window(DAY - timedelta(days=8), DAY),
            "openrouter_default",
            now=FETCHED + timedelta(minutes=1),
        )
        is None
    )


@pytest.mark.parametrize(
    "change",
    [
        {"window": Window(DAY, DAY + timedelta(days=1))},  # a window the probe does not hold
        {"conn": "other_conn"},  # another connection
        {"now": FETCHED + PROBE_MAX_AGE + timedelta(seconds=1)},  # too old
        {"tamper": True},  # does not validate any more
    ],
)
def test_a_probe_record_is_reused_only_for_the_days_it_holds(change: dict[str, Any]) -> None:
    record = probe_record(complete_result(), "http://h/api/v1", "openrouter_default", FETCHED)
    if change.get("tamper"):
        record = copy.deepcopy(record)
        record["payload"]["data"][0]["total_tokens"] = -1
    got = rankings_from_record(
        record,
        change.get("window", Window(DAY, DAY)),
        change.get("conn", "openrouter_default"),
        now=change.get("now", FETCHED + timedelta(minutes=1)),
    )
    assert got is None


def test_reusable_probe_reads_the_upstream_sensors_xcom(mocker: Any) -> None:
    record = probe_record(
        complete_result(), "http://h/api/v1", "openrouter_default", datetime.now(timezone.utc)
    )
    ti = mocker.Mock()
    ti.xcom_pull.return_value = [None, record]
    context = {"task": SimpleNamespace(upstream_task_ids={"wait_for_day", "other"}), "ti": ti}
    got = reusable_probe(context, Window(DAY, DAY), "openrouter_default")  # type: ignore[arg-type]
    assert got is not None and got.rows[0].date == DAY
    ti.xcom_pull.assert_called_once_with(task_ids=["other", "wait_for_day"], key=PROBE_XCOM_KEY)
    assert (
        reusable_probe(context, Window(DAY, DAY + timedelta(days=1)), "openrouter_default") is None
    )  # type: ignore[arg-type]
    assert reusable_probe(context, Window(DAY, DAY), "another_conn") is None  # type: ignore[arg-type]


# ----------------------------------------------------------------- trigger events
def event(**overrides: Any) -> dict[str, Any]:
    record = probe_record(complete_result(), "http://h/api/v1", "openrouter_default", FETCHED)
    base = {
        "status": "success",
        "target_day": "2025-07-04",
        "as_of": "2025-07-05T01:00:00+00:00",
        "end_date": "2025-07-04",
        "probes": 1,
        "requests": 1,
        "message": "ok",
        "base_url": "http://h/api/v1",
        "probe": record,
    }
    base.update(overrides)
    return base


def test_a_valid_success_event_is_accepted() -> None:
    checked = validate_event(event(), DAY)
    assert checked["status"] == "success" and checked["as_of"] == "2025-07-05T01:00:00+00:00"
    assert checked["probe"]["window"] == {"start": "2025-06-27", "end": "2025-07-04"}


def test_timeout_and_error_events_need_no_probe() -> None:
    assert (
        validate_event(event(status="timeout", probe=None, as_of=None, end_date=None), DAY)[
            "status"
        ]
        == "timeout"
    )
    assert validate_event(event(status="error", probe=None), DAY)["status"] == "error"


def tampered_probe() -> dict[str, Any]:
    record = copy.deepcopy(event()["probe"])
    record["payload"]["data"][1], record["payload"]["data"][2] = (
        record["payload"]["data"][2],
        record["payload"]["data"][1],
    )
    return record


def early_probe() -> dict[str, Any]:
    record = probe_record(complete_result(), "http://h/api/v1", "openrouter_default", FETCHED)
    record["payload"]["meta"]["as_of"] = "2025-07-04T23:59:59Z"
    return record


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "expected a dict"),
        ("success", "expected a dict"),
        (event(status="done"), "unknown status"),
        (event(target_day="2025-07-03"), "this run waits for 2025-07-04"),
        (event(probes="1"), "probes="),
        (event(probes=True), "probes="),
        (event(message=None), "no message"),
        (event(status="timeout", as_of="not a time", probe=None), "unreadable"),
        (event(status="timeout", as_of="2025-07-05T01:00:00", probe=None), "unreadable"),
        (event(probe=None), "a success without its probe"),
        (event(probe={"payload": "x"}), "a success without its probe"),
        (event(probe=tampered_probe()), "does not validate"),
        (event(probe=early_probe()), "does not prove 2025-07-04 complete"),
    ],
)
def test_an_invalid_event_is_refused_with_the_reason(bad: Any, message: str) -> None:
    with pytest.raises(AirflowException, match=message):
        validate_event(bad, DAY)


def test_settle_applies_when_revalidating_the_event() -> None:
    with pytest.raises(AirflowException, match="does not prove"):
        validate_event(event(), DAY, settle=timedelta(hours=2))


# ----------------------------------------------------------------- memory values
def test_seen_as_of_proves_only_days_it_covers() -> None:
    seen = SeenAsOf(MIDNIGHT + timedelta(hours=3), DAY, "http://h/api/v1")
    assert seen.proves(DAY) and seen.proves(DAY - timedelta(days=30))
    assert not seen.proves(DAY, settle=timedelta(hours=4))
    assert not seen.proves(DAY + timedelta(days=1))
    assert not SeenAsOf(MIDNIGHT + timedelta(hours=3), DAY - timedelta(days=1), "x").proves(DAY)


def test_seen_as_of_json_round_trip_and_garbage() -> None:
    seen = SeenAsOf(MIDNIGHT, DAY, "http://h/api/v1")
    assert SeenAsOf.from_json(seen.to_json()) == seen
    for garbage in (
        None,
        "x",
        [],
        {"as_of": "x"},
        {"as_of": "2025-07-05T00:00:00", "end_date": "2025-07-04", "base_url": "u"},
    ):
        assert SeenAsOf.from_json(garbage) is None


def test_public_base_url_drops_credentials_and_query() -> None:
    assert (
        public_base_url("https://user:pw@openrouter.ai:443/api/v1/?k=sk-or-1#f")
        == "https://openrouter.ai:443/api/v1"
    )
    assert public_base_url("http://127.0.0.1:8123/api/v1") == "http://127.0.0.1:8123/api/v1"
