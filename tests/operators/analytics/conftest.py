"""The operators' test world (tests/operators/conftest.py) with a connection holding a management
key, for DAG files running AnalyticsQueryOperator tasks (driven by dag.test() through tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing.emulator import Emulator
from tests.partitions.conftest import run_partition  # noqa: F401 - the partitioned-run fixture, shared

from ..conftest import DAG_TEMPLATE, NOW, SCHEDULES, Env, day, make_env

__all__ = [
    "DAG_TEMPLATE",
    "KEY",
    "META",
    "MGMT",
    "NOW",
    "QUERY",
    "SCHEDULES",
    "AnalyticsEnv",
    "Env",
    "day",
    "rows",
]

KEY, MGMT = "sk-or-emulator", "sk-or-mgmt-emulator"
META, QUERY = "/analytics/meta", "/analytics/query"


def rows(data: bytes) -> list[dict[str, Any]]:
    """JSON Lines parsed exactly (decimals as Decimal)."""
    return [json.loads(line, parse_float=Decimal) for line in data.splitlines()]


class AnalyticsEnv(Env):
    """:class:`Env` whose connection (plain key + management key extra) reaches the analytics API."""

    def stats(self) -> dict[str, tuple[int, int]]:
        return self.inodes()

    def partition(self, query_name: str, date: str) -> storage.CommittedPartition:
        from airflow.sdk import ObjectStoragePath

        committed = storage.read_partition(
            ObjectStoragePath(f"{self.uri}/analytics/{query_name}/date={date}")
        )
        assert committed is not None, f"no partition {query_name}/date={date}"
        return committed

    def query_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every analytics query the emulator received, oldest first."""
        return [e["body"] for e in self.emulator.requests if e["path"].endswith(QUERY)]


@pytest.fixture
def env(
    request: pytest.FixtureRequest,
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
    tmp_path: Path,
) -> AnalyticsEnv:
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    conn_id = openrouter_conn(emulator, conn_id="openrouter_analytics", management_api_key=MGMT)
    return make_env(AnalyticsEnv, request, emulator, conn_id, "a_", write_dag, run_dag, tmp_path)
