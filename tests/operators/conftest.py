"""An emulator with a frozen clock, a connection to it, a local lake and DAG files that use them.

Shared by every operator test folder (``analytics/conftest.py`` extends :class:`Env`)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from airflow_provider_openrouter.testing.emulator import Emulator

#: The emulator's clock: the last complete day it serves is 2026-02-28.
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)

SCHEDULES = {
    "daily": 'CronDataIntervalTimetable("0 0 * * *", timezone="UTC")',
    "weekly": "DeltaDataIntervalTimetable(timedelta(days=7))",
    "400d": "DeltaDataIntervalTimetable(timedelta(days=400))",
    "trigger": '"@daily"',
    "hourly": 'CronDataIntervalTimetable("0 * * * *", timezone="UTC")',
    "none": "None",
    # through the compatibility module: resolved only by DAGs that use it (Airflow 3.2+)
    "partition": 'compat.CronPartitionTimetable("0 0 * * *", timezone="UTC", run_offset=-1, key_format="%Y-%m-%d")',
}

DAG_TEMPLATE = """
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable

from airflow_provider_openrouter import compat

from airflow_provider_openrouter.operators.analytics import AnalyticsQueryOperator
from airflow_provider_openrouter.operators.rankings import AppRankingsOperator, RankingsDailyOperator

LAKE = {lake!r}
CONN = {conn!r}

with DAG({dag_id!r}, schedule={schedule}, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False,
         params={params!r}):
{tasks}
"""


def day(value: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day (a logical date)."""
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


@dataclass
class Env:
    """One test's world: emulator, connection, lake directory, DAG writing and running."""

    emulator: Emulator
    conn_id: str
    lake: Path
    dag_id: str
    write_dag: Callable[[str, str], Path]
    run_dag: Callable[..., Any]

    @property
    def uri(self) -> str:
        return f"file://{self.lake}"

    def dag(
        self,
        tasks: str,
        schedule: str = "daily",
        params: dict | None = None,
        dag_id: str | None = None,
        conn: str | None = None,
    ) -> str:
        """Write a DAG file running ``tasks`` (``LAKE`` and ``CONN`` name the lake and the connection)."""
        dag_id = dag_id or self.dag_id
        body = "\n".join("    " + line for line in tasks.strip().splitlines())
        source = DAG_TEMPLATE.format(
            lake=self.uri,
            conn=conn or self.conn_id,
            dag_id=dag_id,
            schedule=SCHEDULES[schedule],
            params=params or {},
            tasks=body,
        )
        self.write_dag(dag_id, source)
        return dag_id

    def run(self, logical_date: str, dag_id: str | None = None) -> Any:
        """Run the DAG for a logical date: ``YYYY-MM-DD`` (midnight UTC) or a full ISO timestamp."""
        when = (
            day(logical_date) if len(logical_date) == 10 else datetime.fromisoformat(logical_date)
        )
        return self.run_dag(dag_id or self.dag_id, when)

    def files(self) -> dict[str, bytes]:
        """Every file under the lake, relative path -> bytes."""
        out = {}
        for root, _, names in os.walk(self.lake):
            for name in names:
                path = Path(root, name)
                out[str(path.relative_to(self.lake))] = path.read_bytes()
        return out

    def inodes(self) -> dict[str, tuple[int, int]]:
        out = {}
        for root, _, names in os.walk(self.lake):
            for name in names:
                st = Path(root, name).stat()
                out[str(Path(root, name).relative_to(self.lake))] = (st.st_ino, st.st_mtime_ns)
        return out


E = TypeVar("E", bound=Env)


def make_env(
    kind: type[E],
    request: pytest.FixtureRequest,
    emulator: Emulator,
    conn_id: str,
    prefix: str,
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
    tmp_path: Path,
) -> E:
    """An ``Env`` (or subclass) for one test: a DAG id from the test's name, a lake under ``tmp_path``."""
    dag_id = prefix + re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:200]
    return kind(emulator, conn_id, tmp_path / "lake", dag_id, write_dag, run_dag)


@pytest.fixture
def env(
    request: pytest.FixtureRequest,
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
    tmp_path: Path,
) -> Env:
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    return make_env(
        Env, request, emulator, openrouter_conn(emulator), "t_", write_dag, run_dag, tmp_path
    )
