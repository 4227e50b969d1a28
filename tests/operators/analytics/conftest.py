"""An emulator with a frozen clock, a connection holding a management key, a local lake, and DAG
files running AnalyticsQueryOperator tasks (driven by dag.test() through tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing.emulator import Emulator

#: The emulator's clock; the days the tests land are long over.
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
KEY, MGMT = "sk-or-emulator", "sk-or-mgmt-emulator"
META, QUERY = "/analytics/meta", "/analytics/query"

SCHEDULES = {
    "daily": 'CronDataIntervalTimetable("0 0 * * *", timezone="UTC")',
    "weekly": "DeltaDataIntervalTimetable(timedelta(days=7))",
    "trigger": '"@daily"',
    "hourly": '"@hourly"',
}

DAG_TEMPLATE = '''
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable

from airflow_provider_openrouter.operators.analytics import AnalyticsQueryOperator

LAKE = {lake!r}
CONN = {conn!r}

with DAG({dag_id!r}, schedule={schedule}, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False,
         params={params!r}):
{tasks}
'''


def day(value: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day (a logical date)."""
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def rows(data: bytes) -> list[dict[str, Any]]:
    """JSON Lines parsed exactly (decimals as Decimal)."""
    return [json.loads(line, parse_float=Decimal) for line in data.splitlines()]


@dataclass
class Env:
    """One test's world: emulator, connection (plain key + management key extra), lake, DAG writing and running."""

    emulator: Emulator
    conn_id: str
    lake: Path
    dag_id: str
    write_dag: Callable[[str, str], Path]
    run_dag: Callable[..., Any]

    @property
    def uri(self) -> str:
        return f"file://{self.lake}"

    def dag(self, tasks: str, schedule: str = "daily", params: dict[str, Any] | None = None, conn: str | None = None) -> str:
        body = "\n".join("    " + line for line in tasks.strip().splitlines())
        self.write_dag(self.dag_id, DAG_TEMPLATE.format(lake=self.uri, conn=conn or self.conn_id, dag_id=self.dag_id,
                                                        schedule=SCHEDULES[schedule], params=params or {}, tasks=body))
        return self.dag_id

    def run(self, logical_date: str) -> Any:
        return self.run_dag(self.dag_id, day(logical_date))

    def files(self) -> dict[str, bytes]:
        """Every file under the lake, relative path -> bytes."""
        out = {}
        for root, _, names in os.walk(self.lake):
            for name in names:
                path = Path(root, name)
                out[str(path.relative_to(self.lake))] = path.read_bytes()
        return out

    def stats(self) -> dict[str, tuple[int, int]]:
        return {name: (os.stat(self.lake / name).st_ino, os.stat(self.lake / name).st_mtime_ns) for name in self.files()}

    def partition(self, query_name: str, date: str) -> storage.CommittedPartition:
        from airflow.sdk import ObjectStoragePath

        committed = storage.read_partition(ObjectStoragePath(f"{self.uri}/analytics/{query_name}/date={date}"))
        assert committed is not None, f"no partition {query_name}/date={date}"
        return committed

    def query_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every analytics query the emulator received, oldest first."""
        return [e["body"] for e in self.emulator.requests if e["path"].endswith(QUERY)]


@pytest.fixture
def env(request: pytest.FixtureRequest, openrouter_emulator_factory: Callable[..., Emulator],
        openrouter_conn: Callable[..., str], write_dag: Callable[[str, str], Path], run_dag: Callable[..., Any],
        tmp_path: Path) -> Env:
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    conn_id = openrouter_conn(emulator, conn_id="openrouter_analytics", management_api_key=MGMT)
    dag_id = "a_" + re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:200]
    return Env(emulator, conn_id, tmp_path / "lake", dag_id, write_dag, run_dag)
