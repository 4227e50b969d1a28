"""Fixtures of the as_of sensor tests: the trigger tests' emulator fixtures plus a sensor DAG."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from triggers.conftest import (  # noqa: F401 (fixtures and helpers shared with the trigger tests)
    KEY,
    Api,
    api,
    api_factory,
    next_whole_second,
    settle_to,
    utc_today,
)

SENSOR_DAG = """
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
"""

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
        self.write_dag(
            self.dag_id,
            SENSOR_DAG.format(dag_id=self.dag_id, conn_id=self.api.conn_id, options=options),
        )

    def run(self, day: date) -> Any:
        """Run the DAG for the data interval [day, day + 1)."""
        return self.run_dag(
            self.dag_id,
            datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc),
        )


WARM_UP_DAG = """
from datetime import datetime, timezone
from airflow.sdk import DAG, task

with DAG("sensor_tests_warm_up", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
    @task
    def noop():
        return None

    noop()
"""


@pytest.fixture(scope="session")
def _warm_task_runner(dags_folder: Any) -> None:
    """Run one trivial task first: the first in-process task run of a session takes seconds to start,
    which would otherwise land inside the short waits that the sensor tests measure against."""
    from airflow_provider_openrouter.compat import DagBag

    path = dags_folder / "sensor_tests_warm_up.py"
    path.write_text(WARM_UP_DAG)
    try:
        DagBag(dag_folder=str(path)).get_dag("sensor_tests_warm_up").test()
    finally:
        path.unlink(missing_ok=True)


@pytest.fixture
def sensor_dag(
    request: pytest.FixtureRequest,
    api: Api,  # noqa: F811 (the fixture imported from the trigger tests)
    write_dag: Callable[[str, str], Any],
    run_dag: Callable[..., Any],
    _warm_task_runner: None,
) -> SensorRun:
    dag_id = "s_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:180]
    return SensorRun(api, dag_id, write_dag, run_dag)


def xcom(dag_id: str, run_id: str, task_id: str, key: str) -> Any:
    """An XCom value as stored in the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
            .one_or_none()
        )
        return None if row is None else row.value


def variable(key: str) -> Any:
    """A Variable's raw value in the metadata DB (None if absent)."""
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(VariableModel).filter_by(key=key).one_or_none()
        return None if row is None else row.val
