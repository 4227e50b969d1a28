"""OpenRouterAsOfSensor in real DAG runs (dag.test, metadata DB) against the emulator over loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.compat import AirflowException
from airflow_provider_openrouter.runtime.as_of_memory import variable_key
from airflow_provider_openrouter.runtime.probe import PROBE_XCOM_KEY
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor

from .conftest import (
    FAST_OPTIONS,
    KEY,
    Api,
    SensorRun,
    next_whole_second,
    settle_to,
    utc_today,
    variable,
    xcom,
)

FROZEN = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)  # the API's last complete day: 2026-02-28
DAY = date(2025, 7, 4)
MODES = {
    "deferrable": "deferrable=True",
    "poke": "deferrable=False, mode='poke'",
    "reschedule": "deferrable=False, mode='reschedule'",
}


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_a_complete_day_costs_one_probe_then_nothing(
    sensor_dag: SensorRun, mode: str, capfd: pytest.CaptureFixture[str]
) -> None:
    api = sensor_dag.api
    api.emulator.set_now(FROZEN)
    sensor_dag.define(f"{MODES[mode]}, {FAST_OPTIONS}")

    first = sensor_dag.run(DAY)
    assert first.task_states == {"wait_for_day": "success", "reuse": "success"}
    assert api.probes() == 1
    # one request: the day, the 7 before it (the rankings operator's default lookback rides on it) and,
    # as the day is long past, on towards today (366 days): the answer proves every day the API serves
    assert [r["params"] for r in api.emulator.requests] == [
        {"start_date": "2025-06-27", "end_date": "2026-06-27"}
    ]
    assert first.xcom("wait_for_day") == {
        "target_day": "2025-07-04",
        "as_of": "2026-03-01T02:00:00+00:00",
        "end_date": "2026-02-28",
        "probes": 1,
        "proof": "probe",
    }
    assert first.xcom("reuse") == [
        51,
        "2026-03-01T02:00:00Z",
    ]  # the next task got the probe's answer
    record = xcom(sensor_dag.dag_id, first.run_id, "wait_for_day", PROBE_XCOM_KEY)
    assert (
        record["window"] == {"start": "2025-06-27", "end": "2025-07-04"}
        and len(record["payload"]["data"]) == 8 * 51
    )
    assert KEY not in json.dumps(record)
    remembered = json.loads(variable(variable_key(api.conn_id)))
    assert remembered == {
        "as_of": "2026-03-01T02:00:00+00:00",
        "end_date": "2026-02-28",
        "base_url": api.emulator.base_url,
    }

    for again in (DAY, DAY - timedelta(days=30)):  # a rerun, and an older day of a backfill
        result = sensor_dag.run(again)
        assert result.task_states == {"wait_for_day": "success", "reuse": "success"}
        assert (
            result.xcom("wait_for_day")["proof"] == "memory"
            and result.xcom("wait_for_day")["probes"] == 0
        )
        assert result.xcom("reuse") is None  # no probe to reuse: the operator asks itself
    assert api.probes() == 1  # neither run cost a request

    logs = capfd.readouterr()
    text = logs.out + logs.err
    assert (
        "Spent 1 probe(s), 1 HTTP request(s) of the account's daily quota" in text
        or "Probes spent: 1" in text
    )
    assert "was already proven complete" in text and KEY not in text


def test_memory_of_another_api_is_not_trusted(
    sensor_dag: SensorRun, api_factory: Callable[..., Api], openrouter_conn: Callable[..., str]
) -> None:
    api = sensor_dag.api
    api.emulator.set_now(FROZEN)
    sensor_dag.define(f"deferrable=False, {FAST_OPTIONS}")
    assert sensor_dag.run(DAY).xcom("wait_for_day")["proof"] == "probe"
    other = api_factory(now=FROZEN)  # the same connection id now points at another API
    openrouter_conn(other.emulator, conn_id=api.conn_id)
    assert sensor_dag.run(DAY).xcom("wait_for_day")["proof"] == "probe"
    assert other.probes() == 1


def test_memory_keeps_the_newest_as_of_and_the_latest_day(sensor_dag: SensorRun) -> None:
    api = sensor_dag.api
    api.emulator.set_now(FROZEN)
    sensor_dag.define(f"deferrable=False, {FAST_OPTIONS}")
    sensor_dag.run(DAY)
    older = DAY - timedelta(days=1)
    later = FROZEN + timedelta(hours=1)
    settle = settle_to(FROZEN + timedelta(minutes=30), older)  # beyond what the memory proves
    api.emulator.set_now(later)
    sensor_dag.define(
        f"deferrable=False, settle=timedelta(seconds={settle.total_seconds()}), {FAST_OPTIONS}"
    )
    assert sensor_dag.run(older).xcom("wait_for_day")["proof"] == "probe"
    remembered = json.loads(variable(variable_key(api.conn_id)))
    assert (remembered["as_of"], remembered["end_date"]) == (later.isoformat(), "2026-02-28")


@pytest.mark.parametrize("mode", ["deferrable", "poke", "reschedule"])
def test_no_request_before_the_completion_instant(
    sensor_dag: SensorRun, mode: str, capfd: pytest.CaptureFixture[str]
) -> None:
    yesterday = utc_today() - timedelta(days=1)
    complete_at = next_whole_second(timedelta(seconds=3))
    settle = settle_to(complete_at, yesterday)
    sensor_dag.define(
        f"{MODES[mode]}, settle=timedelta(seconds={settle.total_seconds()}), {FAST_OPTIONS}"
    )
    result = sensor_dag.run(yesterday)
    assert result.task_states["wait_for_day"] == "success"
    times = sensor_dag.api.probe_times()
    assert times and min(times) >= complete_at
    logs = capfd.readouterr()
    waited = "Waiting without a request until" if mode == "deferrable" else "No request can prove"
    assert waited in logs.out + logs.err  # the sensor really started before the completion instant
    summary = result.xcom("wait_for_day")
    assert summary["proof"] == "probe" and summary["probes"] == len(times)
    assert datetime.fromisoformat(summary["as_of"]) >= complete_at


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_a_day_that_cannot_complete_before_the_timeout_fails_without_a_request(
    sensor_dag: SensorRun, mode: str, capfd: pytest.CaptureFixture[str]
) -> None:
    sensor_dag.define(f"{MODES[mode]}, timeout=30, {FAST_OPTIONS}")
    result = sensor_dag.run(utc_today())  # today is complete only after midnight
    assert result.task_states["wait_for_day"] == "failed" and result.state == "failed"
    assert sensor_dag.api.probes() == 0
    logs = capfd.readouterr()
    assert "cannot be complete before" in logs.out + logs.err


def test_poke_mode_waits_for_retry_at_when_the_quota_is_spent(sensor_dag: SensorRun) -> None:
    api = sensor_dag.api  # real clock: the emulator logs when each request arrived
    api.emulator.inject(
        "429",
        times=1,
        path="/datasets/rankings-daily",
        retry_after=1,
        message="Daily request limit exceeded: 500 requests per day",
    )
    sensor_dag.define(f"deferrable=False, {FAST_OPTIONS}")
    result = sensor_dag.run(DAY)
    assert (
        result.task_states["wait_for_day"] == "success"
        and result.xcom("wait_for_day")["probes"] == 2
    )
    first, second = api.probe_times()
    assert second - first >= timedelta(seconds=1)  # not before the advertised retry time


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_a_quota_renewing_after_the_deadline_fails_at_once(
    sensor_dag: SensorRun, mode: str, capfd: pytest.CaptureFixture[str]
) -> None:
    api = sensor_dag.api
    api.emulator.inject(
        "429",
        times=None,
        path="/datasets/rankings-daily",
        retry_after=7200,
        message="Daily request limit exceeded: 500 requests per day",
    )
    sensor_dag.define(f"{MODES[mode]}, timeout=600, {FAST_OPTIONS}")
    result = sensor_dag.run(DAY)
    assert result.task_states["wait_for_day"] == "failed" and api.probes() == 1
    logs = capfd.readouterr()
    assert re.search(
        r"(accepts requests again at|No probe is allowed before) \S+, after (this sensor's|the) deadline",
        logs.out + logs.err,
    )


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_a_rejected_key_fails_the_sensor_without_leaking_it(
    sensor_dag: SensorRun,
    openrouter_conn: Callable[..., str],
    mode: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    openrouter_conn(
        sensor_dag.api.emulator, conn_id=sensor_dag.api.conn_id, key="sk-or-not-valid-000"
    )
    sensor_dag.define(f"{MODES[mode]}, {FAST_OPTIONS}")
    result = sensor_dag.run(DAY)
    assert result.task_states["wait_for_day"] == "failed"
    assert sensor_dag.api.probes() == 1
    logs = capfd.readouterr()
    assert (
        "invalid API key" in logs.out + logs.err
        and "sk-or-not-valid-000" not in logs.out + logs.err
    )


def test_defaults_and_parse_time_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    sensor = OpenRouterAsOfSensor(task_id="w")
    assert sensor.deferrable is False and sensor.openrouter_conn_id == "openrouter_default"
    assert (sensor.poke_interval, sensor.timeout, sensor.max_wait_seconds) == (
        300.0,
        86400.0,
        3600.0,
    )
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert OpenRouterAsOfSensor(task_id="w").deferrable is True
    assert OpenRouterAsOfSensor(task_id="w", deferrable=False).deferrable is False
    with pytest.raises(ValueError, match="settle"):
        OpenRouterAsOfSensor(task_id="w", settle=-5)  # type: ignore[arg-type]


def test_resume_refuses_an_invalid_event() -> None:
    sensor = OpenRouterAsOfSensor(task_id="w")
    context: Any = {
        "data_interval_start": datetime(2025, 7, 4, tzinfo=timezone.utc),
        "data_interval_end": datetime(2025, 7, 5, tzinfo=timezone.utc),
        "ti": None,
    }
    with pytest.raises(AirflowException, match="Invalid event"):
        sensor.execute_complete(
            context,
            event={
                "status": "success",
                "target_day": "2025-07-04",
                "probes": 1,
                "requests": 1,
                "message": "trust me",
                "probe": None,
            },
        )
    with pytest.raises(AirflowException, match="this run waits for 2025-07-04"):
        sensor.execute_complete(
            context,
            event={
                "status": "success",
                "target_day": "2025-07-05",
                "probes": 1,
                "requests": 1,
                "message": "",
                "probe": None,
            },
        )
