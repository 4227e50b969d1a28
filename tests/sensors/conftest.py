"""Fixtures of the as_of sensor and trigger tests: an emulator and an Airflow connection to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_openrouter.testing import Emulator
from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger

KEY = "sk-or-emulator"
PROBE_PATH = "/datasets/rankings-daily"


@dataclass
class Api:
    """A started emulator and the id of a fresh Airflow connection to it."""

    emulator: Emulator
    conn_id: str

    def probe_times(self) -> list[datetime]:
        """When each probe reached the emulator (by the emulator's clock, real time unless frozen)."""
        return [datetime.fromisoformat(r["time"]) for r in self.emulator.requests if r["path"].endswith(PROBE_PATH)]

    def probes(self) -> int:
        return self.emulator.request_count(PROBE_PATH)


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


@pytest.fixture
def api_factory(openrouter_emulator_factory: Callable[..., Emulator], openrouter_conn: Callable[..., str]) -> Callable[..., Api]:
    """Make an emulator (real clock, no limits unless given) plus a connection to it.

    The connection id is unique to the call, so the as_of memory (one Variable per connection)
    of other tests cannot leak in.
    """

    def make(key: str = KEY, **kwargs: Any) -> Api:
        kwargs.setdefault("rpm", None)
        kwargs.setdefault("daily_limit", None)
        emulator = openrouter_emulator_factory(**kwargs)
        return Api(emulator, openrouter_conn(emulator, conn_id=f"openrouter_{uuid.uuid4().hex[:10]}", key=key))

    return make


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """An emulator that follows real time with no ingest lag: yesterday (UTC) is complete."""
    return api_factory()


def run_trigger(trigger: OpenRouterAsOfTrigger, limit: float = 60.0) -> dict[str, Any]:
    """Run a trigger to its first event (as the triggerer would) and return the event's payload."""

    async def first_event() -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(asyncio.wait_for(first_event(), limit))
    return event.payload


def settle_to(moment: datetime, day: date) -> timedelta:
    """The ``settle`` that makes ``day`` complete exactly at ``moment``."""
    return moment - datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)


def next_whole_second(after: timedelta = timedelta(seconds=2)) -> datetime:
    """A whole-second instant ``after`` from now (the emulator's as_of has whole seconds)."""
    return (datetime.now(timezone.utc) + after).replace(microsecond=0)


SENSOR_DAG = '''
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.runtime.probe import reusable_probe
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor
from airflow_provider_openrouter.windows.intervals import Window, days_for_interval

with DAG({dag_id!r}, schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
         start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False):
    wait = OpenRouterAsOfSensor(task_id="wait_for_day", openrouter_conn_id={conn_id!r}, {options})

    @task
    def reuse(**context):
        window = days_for_interval(context["data_interval_start"], context["data_interval_end"])
        rankings = reusable_probe(context, Window(window.end, window.end), {conn_id!r})
        return None if rankings is None else [len(rankings.rows), rankings.meta.raw["as_of"]]

    wait >> reuse()
'''

#: Sensor options that keep the tests fast: short waits between probes.
FAST_OPTIONS = "poke_interval=0.1, max_wait=0.3"


@dataclass
class SensorRun:
    """A DAG ``sensor -> reuse`` (the reuse task reports what ``reusable_probe`` found) and its runs."""

    api: Api
    dag_id: str
    write_dag: Callable[[str, str], Any]
    run_dag: Callable[..., Any]

    def define(self, options: str) -> None:
        self.write_dag(self.dag_id, SENSOR_DAG.format(dag_id=self.dag_id, conn_id=self.api.conn_id, options=options))

    def run(self, day: date) -> Any:
        """Run the DAG for the data interval [day, day + 1)."""
        return self.run_dag(self.dag_id, datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc))


WARM_UP_DAG = '''
from datetime import datetime, timezone
from airflow.sdk import DAG, task

with DAG("sensor_tests_warm_up", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
    @task
    def noop():
        return None

    noop()
'''


@pytest.fixture(scope="session")
def _warm_task_runner(dags_folder: Any) -> None:
    """Run one trivial task first: the first in-process task run of a session takes seconds to start,
    which would otherwise land inside the short waits that the sensor tests measure against."""
    from airflow.dag_processing.dagbag import DagBag

    path = dags_folder / "sensor_tests_warm_up.py"
    path.write_text(WARM_UP_DAG)
    try:
        DagBag(dag_folder=str(path)).get_dag("sensor_tests_warm_up").test()
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture
def sensor_dag(request: pytest.FixtureRequest, api: Api, write_dag: Callable[[str, str], Any],
               run_dag: Callable[..., Any], _warm_task_runner: None) -> SensorRun:
    dag_id = "s_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:180]
    return SensorRun(api, dag_id, write_dag, run_dag)


def xcom(dag_id: str, run_id: str, task_id: str, key: str) -> Any:
    """An XCom value as stored in the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key).one_or_none()
        return None if row is None else row.value


def variable(key: str) -> Any:
    """A Variable's raw value in the metadata DB (None if absent)."""
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(VariableModel).filter_by(key=key).one_or_none()
        return None if row is None else row.val
