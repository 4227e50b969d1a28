"""The example DAG dags/openrouter_analytics.py: it imports cleanly and runs end to end against the emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import Emulator

from .conftest import META, MGMT, NOW, QUERY, rows

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "openrouter_analytics.py"
TASKS = ("tokens_cost_by_model", "requests_by_app")


@pytest.fixture
def example_dag(install_example_dag: Callable[..., Path]) -> Path:
    """The example DAG file in the configured DAGs folder, writing to a fresh local lake."""
    return install_example_dag(DAG_FILE, "/")


def test_the_dag_imports_without_errors_or_warnings(
    example_dag: Path, load_dags: Callable[[], Any]
) -> None:
    from airflow.timetables.interval import CronDataIntervalTimetable

    bag, caught = load_dags()
    assert bag.import_errors == {} and bag.captured_warnings == {} and caught == []
    dag = bag.get_dag("openrouter_analytics")
    assert (
        isinstance(dag.timetable, CronDataIntervalTimetable)
        and dag.timetable.summary == "0 0 * * *"
    )
    assert dag.start_date == datetime(2025, 1, 1, tzinfo=timezone.utc) and dag.catchup is False
    assert set(dag.task_ids) == set(TASKS)
    for task_id in TASKS:
        task = dag.get_task(task_id)
        assert (task.output_uri, task.output_conn_id, task.openrouter_conn_id) == (
            example_dag.as_uri(),
            None,
            "openrouter_default",
        )
        assert task.granularity == "day" and task.query_name == task_id
        assert [a.uri for a in task.outlets] == [f"{example_dag.as_uri()}/analytics/{task_id}"]
    assert dag.get_task("tokens_cost_by_model").build_query().metrics[-1] == "cost"


def test_one_run_lands_both_queries_for_its_day(
    example_dag: Path,
    dags_folder: Path,
    run_dag: Callable[..., Any],
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
) -> None:
    from airflow.sdk import ObjectStoragePath

    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    openrouter_conn(emulator, conn_id="openrouter_default", management_api_key=MGMT)
    result = run_dag("openrouter_analytics", datetime(2025, 7, 5, tzinfo=timezone.utc))
    assert result.state == "success" and result.task_states == dict.fromkeys(TASKS, "success")
    assert emulator.request_count(META) == 2 and emulator.request_count(QUERY) == 2
    for task_id in TASKS:
        committed = storage.read_partition(
            ObjectStoragePath(f"{example_dag.as_uri()}/analytics/{task_id}/date=2025-07-04")
        )
        assert committed is not None and committed.manifest["row_count"] > 0
        assert committed.manifest["time_range"] == {
            "start": "2025-07-04T00:00:00Z",
            "end": "2025-07-05T00:00:00Z",
        }
    by_model = rows(
        storage.read_partition(
            ObjectStoragePath(
                f"{example_dag.as_uri()}/analytics/tokens_cost_by_model/date=2025-07-04"
            )
        ).data
    )  # type: ignore[union-attr]
    assert [r["cost"] for r in by_model] == sorted(
        (r["cost"] for r in by_model), reverse=True
    )  # order_by cost desc
    assert {e["uri"] for e in result.asset_events} == {
        f"{example_dag.as_uri()}/analytics/{t}" for t in TASKS
    }
