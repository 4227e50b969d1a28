"""The example DAG dags/openrouter_daily.py: it imports cleanly and runs end to end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily
from airflow_provider_openrouter.api.datasets.app_rankings import APP_CATEGORIES, APP_SORTS
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import Emulator
from airflow_provider_openrouter.windows import Window

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "openrouter_daily.py"
NOW = datetime(
    2026, 3, 1, 2, 0, tzinfo=timezone.utc
)  # the emulator's last complete day: 2026-02-28


@pytest.fixture
def example_dag(install_example_dag: Callable[..., Path]) -> Path:
    """The example DAG file in the configured DAGs folder, writing to a fresh local lake."""
    return install_example_dag(DAG_FILE)


def test_the_dag_imports_without_errors_or_warnings(
    example_dag: Path, load_dags: Callable[[], Any]
) -> None:
    from airflow.timetables.interval import CronDataIntervalTimetable

    bag, caught = load_dags()
    assert bag.import_errors == {} and bag.captured_warnings == {} and caught == []
    dag = bag.get_dag("openrouter_daily")
    assert (
        isinstance(dag.timetable, CronDataIntervalTimetable)
        and dag.timetable.summary == "0 0 * * *"
    )
    assert dag.start_date == datetime(2025, 1, 1, tzinfo=timezone.utc) and dag.catchup is False
    assert 1 <= dag.max_active_runs <= 2
    sensor = dag.get_task("wait_for_day")
    assert sensor.openrouter_conn_id == "openrouter_default" and sensor.settle == timedelta(0)
    assert sensor.downstream_task_ids == {"rankings_daily"}
    rankings = dag.get_task("rankings_daily")
    assert rankings.output_uri == example_dag.as_uri() and rankings.output_conn_id is None
    assert rankings.downstream_task_ids == {f"app_rankings_{sort}" for sort in APP_SORTS}
    for sort in APP_SORTS:
        mapped = dag.get_task(f"app_rankings_{sort}")
        assert mapped.partial_kwargs["sort"] == sort
        assert mapped.expand_input.value == {"category": [None, *APP_CATEGORIES]}
        assert [a.uri for a in mapped.outlets] == [
            f"{example_dag.as_uri()}/app_rankings/sort={sort}"
        ]
    assert [a.uri for a in rankings.outlets] == [f"{example_dag.as_uri()}/rankings_daily"]


def test_output_location_comes_from_the_environment(
    example_dag: Path, load_dags: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_OUTPUT_URI", "s3://lake/openrouter/")
    monkeypatch.setenv("OPENROUTER_OUTPUT_CONN_ID", "aws_lake")
    bag, _ = load_dags()
    rankings = bag.get_dag("openrouter_daily").get_task("rankings_daily")
    assert (rankings.output_uri, rankings.output_conn_id) == ("s3://lake/openrouter", "aws_lake")


@pytest.fixture
def emulator(
    openrouter_emulator_factory: Callable[..., Emulator], openrouter_conn: Callable[..., str]
) -> Emulator:
    em = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    openrouter_conn(em, conn_id="openrouter_default")
    return em


def test_one_run_lands_its_day_end_to_end(
    example_dag: Path, emulator: Emulator, run_dag: Callable[..., Any]
) -> None:
    from airflow.sdk import ObjectStoragePath

    result = run_dag("openrouter_daily", datetime(2025, 7, 5, tzinfo=timezone.utc))
    assert result.state == "success", result.task_states
    assert set(result.task_states.values()) == {"success"}
    assert result.xcom("wait_for_day")["target_day"] == "2025-07-04"

    base = ObjectStoragePath(example_dag.as_uri())
    daily = storage.read_partition(
        storage.join(base, rankings_daily.partition_key(datetime(2025, 7, 4).date()))
    )
    assert daily is not None and daily.manifest["row_count"] == 51
    assert (
        daily.manifest["citation"]
        == "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
    )
    window = Window(datetime(2025, 7, 4).date(), datetime(2025, 7, 4).date())
    for sort in APP_SORTS:
        for category in (None, *APP_CATEGORIES):
            part = storage.read_partition(
                storage.join(base, app_rankings.partition_key(sort, category, None, window))
            )
            assert part is not None and part.manifest["row_count"] > 0, (sort, category)
    uris = {event["uri"] for event in result.asset_events}
    assert f"{example_dag.as_uri()}/rankings_daily" in uris
    assert {f"{example_dag.as_uri()}/app_rankings/sort={sort}" for sort in APP_SORTS} <= uris
    app_requests = emulator.request_count("/datasets/app-rankings")
    assert app_requests == len(APP_SORTS) * (1 + len(APP_CATEGORIES))  # one page of 50 each

    again = run_dag(
        "openrouter_daily", datetime(2025, 7, 5, tzinfo=timezone.utc)
    )  # a rerun: nothing changes
    assert again.state == "success" and again.xcom("wait_for_day")["proof"] == "memory"
    assert (
        storage.read_partition(
            storage.join(base, rankings_daily.partition_key(window.start))
        ).sha256
        == daily.sha256
    )


def test_the_operator_reuses_the_sensors_probe_for_the_latest_day(
    example_dag: Path, emulator: Emulator, run_dag: Callable[..., Any]
) -> None:
    result = run_dag(
        "openrouter_daily", NOW.replace(hour=0)
    )  # lands 2026-02-28, the last complete day
    assert result.state == "success"
    assert emulator.request_count("/datasets/rankings-daily") == 1  # the sensor's probe, reused
    assert result.xcom("rankings_daily")["requests"] == 0


def test_old_days_share_one_chunk_and_later_sensors_cost_nothing(
    example_dag: Path, emulator: Emulator, run_dag: Callable[..., Any]
) -> None:
    """A backfill's first run probes and fetches the year's chunk; the next days of that year cost no request."""
    first = run_dag("openrouter_daily", datetime(2025, 7, 5, tzinfo=timezone.utc))
    assert first.state == "success"
    assert emulator.request_count("/datasets/rankings-daily") == 2  # one probe, one chunk of 2025
    for logical in (
        datetime(2025, 3, 2, tzinfo=timezone.utc),
        datetime(2025, 11, 30, tzinfo=timezone.utc),
    ):
        later = run_dag("openrouter_daily", logical)
        assert later.state == "success" and later.xcom("wait_for_day")["proof"] == "memory"
        assert later.xcom("rankings_daily")["requests"] == 0
    assert emulator.request_count("/datasets/rankings-daily") == 2
    chunk = [
        r["params"] for r in emulator.requests if r["path"].endswith("/datasets/rankings-daily")
    ][1]
    assert (chunk["start_date"], chunk["end_date"]) == ("2025-01-01", "2025-12-31")
