"""The example DAG dags/openrouter_session_cost.py: it imports cleanly and lands one snapshot per week."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import Emulator, dataset

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "openrouter_session_cost.py"
#: A Tuesday 03:00 UTC, when the DAG runs: the snapshot ending Monday 2026-02-23 is out since 02:00.
RUN = datetime(2026, 2, 24, 3, 0, tzinfo=timezone.utc)
PATH = "/datasets/session-cost"

pytestmark = pytest.mark.integration


@pytest.fixture
def lake(install_example_dag: Callable[..., Path]) -> Path:
    return install_example_dag(DAG_FILE)


def test_the_dag_imports_without_errors_or_warnings(
    lake: Path, load_dags: Callable[[], Any]
) -> None:
    from airflow.timetables.trigger import CronTriggerTimetable

    bag, caught = load_dags()
    assert bag.import_errors == {} and bag.captured_warnings == {} and caught == []
    dag = bag.get_dag("openrouter_session_cost")
    assert isinstance(dag.timetable, CronTriggerTimetable) and dag.timetable.summary == "0 3 * * 2"
    assert dag.catchup is False and dag.max_active_runs == 1
    sensor = dag.get_task("wait_for_snapshot")
    assert sensor.downstream_task_ids == {"session_cost"} and sensor.settle == timedelta(hours=2)
    assert [a.uri for a in dag.get_task("session_cost").outlets] == [
        f"{lake.as_uri()}/session_cost/app_slug=all/model=all/turn_range=all"
    ]


def test_weekly_runs_land_each_snapshot_once(
    lake: Path,
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    run_dag: Callable[..., Any],
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with (
        create_session() as session
    ):  # the memory belongs to the connection id, shared by the suite
        session.query(VariableModel).filter_by(
            key="openrouter_session_cost__openrouter_default"
        ).delete()
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, now=RUN)
    openrouter_conn(emulator, conn_id="openrouter_default")

    first = run_dag("openrouter_session_cost", RUN)
    assert first.task_states == {"wait_for_snapshot": "success", "session_cost": "success"}
    key = "session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-02-23"
    part = storage.read_partition(ObjectStoragePath(f"{lake.as_uri()}/{key}"))
    assert part is not None and part.manifest["row_count"] == dataset.SESSION_COST_CELLS
    assert b"0.12345678901234567890123" in part.data
    requests = [r["params"] for r in emulator.requests]
    assert requests == [{"limit": "1", "offset": "0"}] + [
        {"limit": "500", "offset": str(o)} for o in (0, 500, 1000)
    ]
    assert (
        first.xcom("session_cost")["requests"] == 3
        and first.xcom("wait_for_snapshot")["proof"] == "probe"
    )

    emulator.clear_log()
    files = {p: p.stat().st_mtime_ns for p in lake.rglob("*")}
    again = run_dag(
        "openrouter_session_cost", RUN + timedelta(hours=1)
    )  # a manual rerun, same week
    assert (
        again.xcom("wait_for_snapshot")["proof"] == "memory"
        and again.xcom("session_cost")["partitions_written"] == 0
    )
    assert {p: p.stat().st_mtime_ns for p in lake.rglob("*")} == files
    assert emulator.request_count(PATH) == 3  # the operator's pages only: the sensor asked nothing

    emulator.clear_log()
    emulator.set_now(RUN + timedelta(days=7))
    week = run_dag("openrouter_session_cost", RUN + timedelta(days=7))
    assert (
        week.xcom("session_cost")["partition"]
        == "session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-03-02"
    )
    assert emulator.request_count(PATH) == 4 and week.xcom("wait_for_snapshot")["proof"] == "probe"
    out = capfd.readouterr()
    assert "sk-or-emulator" not in out.out + out.err
    assert all("sk-or-emulator" not in p.read_text() for p in lake.rglob("*") if p.is_file())
    manifest = json.loads(
        (
            lake
            / "session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-03-02/_manifest.json"
        ).read_text()
    )
    assert manifest["snapshot"] == {
        "window_end_date": "2026-03-02",
        "window_days": 30,
        "version": "v1",
    }


def test_provider_info_lists_the_session_cost_modules_and_they_import() -> None:
    import importlib

    from airflow_provider_openrouter.get_provider_info import get_provider_info

    info = get_provider_info()
    listed = {
        kind: [m for entry in info[kind] for m in entry["python-modules"]]
        for kind in ("operators", "sensors", "triggers")
    }
    assert "airflow_provider_openrouter.operators.session_cost" in listed["operators"]
    assert "airflow_provider_openrouter.sensors.session_cost" in listed["sensors"]
    assert "airflow_provider_openrouter.triggers.session_cost" in listed["triggers"]
    assert (
        "airflow_provider_openrouter.triggers.as_of" in listed["triggers"]
    )  # the as_of trigger keeps its classpath
    for modules in listed.values():
        for module in modules:
            importlib.import_module(module)
