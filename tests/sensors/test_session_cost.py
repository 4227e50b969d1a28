"""OpenRouterSessionCostSensor in real DAG runs (dag.test) against the emulator over loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.compat import AirflowException
from airflow_provider_openrouter.sensors.session_cost import (
    OpenRouterSessionCostSensor,
    validate_event,
)

from .conftest import Api, variable

pytestmark = pytest.mark.integration

PATH = "/datasets/session-cost"
DAG = """
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.sensors.session_cost import OpenRouterSessionCostSensor

with DAG({dag_id!r}, schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
         start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False):
    OpenRouterSessionCostSensor(task_id="wait", openrouter_conn_id={conn_id!r}, poke_interval=0.2, max_wait=0.3,
                                {options})
"""
MODES = {"deferrable": "deferrable=True", "poke": "deferrable=False, mode='poke'"}


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


class Runs:
    def __init__(
        self, api: Api, dag_id: str, write_dag: Callable[..., Any], run_dag: Callable[..., Any]
    ) -> None:
        self.api, self.dag_id, self.write_dag, self.run_dag = api, dag_id, write_dag, run_dag

    def define(self, options: str) -> None:
        self.write_dag(
            self.dag_id, DAG.format(dag_id=self.dag_id, conn_id=self.api.conn_id, options=options)
        )

    def run(self, interval_end: date) -> Any:
        return self.run_dag(self.dag_id, midnight(interval_end))

    def memory(self) -> Any:
        raw = variable(f"openrouter_session_cost__{self.api.conn_id}")
        return None if raw is None else json.loads(raw)


def make_runs(
    request: pytest.FixtureRequest,
    api: Api,
    write_dag: Callable[..., Any],
    run_dag: Callable[..., Any],
) -> Runs:
    dag_id = "sc_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:180]
    return Runs(api, dag_id, write_dag, run_dag)


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_first_run_probes_once_then_the_memory_answers(
    request: pytest.FixtureRequest,
    api: Api,
    write_dag: Any,
    run_dag: Any,
    _warm_task_runner: None,
    mode: str,
) -> None:
    runs = make_runs(request, api, write_dag, run_dag)
    runs.define(MODES[mode])
    current = api.emulator.session_cost_window_end()
    assert current is not None
    first = runs.run(current + timedelta(days=2))
    assert first.task_states == {"wait": "success"}
    assert (
        first.xcom("wait")["proof"] == "probe"
        and first.xcom("wait")["window_end_date"] == current.isoformat()
    )
    assert (
        api.emulator.request_count(PATH) == 1
        and runs.memory()["window_end_date"] == current.isoformat()
    )
    assert "sk-or-emulator" not in json.dumps(runs.memory())
    second = runs.run(
        current + timedelta(days=7)
    )  # the next snapshot is not due before current + 8 days
    assert second.task_states == {"wait": "success"} and second.xcom("wait")["proof"] == "memory"
    assert api.emulator.request_count(PATH) == 1


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_waits_for_the_due_snapshot_without_asking_before_it_can_exist(
    request: pytest.FixtureRequest,
    api_factory: Callable[..., Api],
    write_dag: Any,
    run_dag: Any,
    _warm_task_runner: None,
    mode: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    end = api_factory().emulator.session_cost_window_end()
    assert end is not None
    published = datetime.combine(end + timedelta(days=1), time(2), tzinfo=timezone.utc)
    api = api_factory(now=published - timedelta(hours=1))  # serves the snapshot ending end - 7 days
    runs = make_runs(request, api, write_dag, run_dag)
    runs.define(MODES[mode])
    assert (
        runs.run(end).xcom("wait")["window_end_date"] == (end - timedelta(days=7)).isoformat()
    )  # learns it
    api.emulator.clear_log()
    capfd.readouterr()
    timer = threading.Timer(2.0, api.emulator.set_now, args=(published + timedelta(minutes=5),))
    timer.start()
    try:
        result = runs.run(
            end + timedelta(days=2)
        )  # due: the snapshot ending `end`, not published yet
    finally:
        timer.cancel()
    assert result.task_states == {"wait": "success"}
    assert result.xcom("wait")["window_end_date"] == end.isoformat() and result.xcom("wait")[
        "after"
    ] == str(end - timedelta(days=7))
    assert (
        api.emulator.request_count(PATH) >= 2
        and runs.memory()["window_end_date"] == end.isoformat()
    )
    logs = capfd.readouterr()  # the first probe found the old snapshot, and the run kept waiting
    assert (
        f"Probe 1: snapshot v1 of 30 day(s) ending {end - timedelta(days=7)}" in logs.out + logs.err
    )


@pytest.mark.parametrize("mode", ["deferrable", "poke"])
def test_a_snapshot_that_cannot_exist_before_the_timeout_fails_without_a_request(
    request: pytest.FixtureRequest,
    api: Api,
    write_dag: Any,
    run_dag: Any,
    _warm_task_runner: None,
    mode: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    runs = make_runs(request, api, write_dag, run_dag)
    runs.define(f"{MODES[mode]}, timeout=3")
    current = api.emulator.session_cost_window_end()
    assert current is not None
    assert runs.run(current + timedelta(days=1)).task_states == {
        "wait": "success"
    }  # remembers `current`
    api.emulator.clear_log()
    result = runs.run(
        current + timedelta(days=8)
    )  # due: current + 7, which cannot exist before current + 8 days
    assert result.task_states == {"wait": "failed"} and api.emulator.requests == []
    logs = capfd.readouterr()
    assert "cannot exist before" in logs.out + logs.err


def test_resume_refuses_an_invalid_event() -> None:
    good_meta = {
        "as_of": "2026-11-24T02:00:00Z",
        "version": "v1",
        "window_days": 30,
        "window_end_date": "2026-11-23",
    }
    base = {
        "status": "success",
        "after": "2026-11-16",
        "meta": good_meta,
        "probes": 2,
        "requests": 2,
        "message": "ok",
        "base_url": "http://127.0.0.1:1/api/v1",
    }
    assert validate_event(base, date(2026, 11, 16))["meta"].window_end_date == date(2026, 11, 23)
    forged = [
        ({**base, "after": "2026-11-09"}, "this run waits for one after '2026-11-16'"),
        (
            {**base, "meta": {**good_meta, "window_end_date": "2026-11-16"}},
            "a success without a snapshot ending after",
        ),
        ({**base, "meta": {**good_meta, "window_days": None}}, "does not validate"),
        ({**base, "status": "done"}, "unknown status"),
        ({**base, "probes": -1}, "probes=-1"),
        ("success", "expected a dict"),
    ]
    for event, message in forged:
        with pytest.raises(AirflowException, match=message):
            validate_event(event, date(2026, 11, 16))


def test_parse_time_checks() -> None:
    with pytest.raises(ValueError, match="settle"):
        OpenRouterSessionCostSensor(task_id="w", settle=timedelta(hours=-1))
    assert OpenRouterSessionCostSensor(task_id="w", deferrable=True).deferrable is True


def test_the_snapshot_due_for_a_run() -> None:
    from airflow_provider_openrouter.sensors.session_cost import due

    monday, utc = date(2026, 11, 16), timezone.utc
    assert due(None, datetime(2026, 11, 25, tzinfo=utc), timedelta(0)) == (
        None,
        None,
        None,
    )  # ask once
    tuesday_3am = datetime(2026, 11, 24, 3, tzinfo=utc)
    assert due(monday, tuesday_3am, timedelta(hours=2)) == (
        date(2026, 11, 23),
        monday,
        datetime(2026, 11, 24, 2, tzinfo=utc),
    )
    assert due(monday, tuesday_3am, timedelta(hours=4)) == (
        None,
        monday,
        None,
    )  # not over + settle yet
    assert due(monday, datetime(2026, 11, 24, tzinfo=utc), timedelta(0)) == (
        date(2026, 11, 23),
        monday,
        datetime(2026, 11, 24, tzinfo=utc),
    )
    assert due(monday, datetime(2026, 12, 9, tzinfo=utc), timedelta(0))[0] == date(
        2026, 12, 7
    )  # weeks missed
