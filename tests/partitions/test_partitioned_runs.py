"""Partitioned runs in process (``dag.test()`` with a partition): the right days, keyed asset events,
the weekly rollup of dags/openrouter_partitioned.py, and interval DAGs left exactly as they were."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import Emulator
from tests.partitions.conftest import DAG_FILE, NOW, PartitionRun, collect, midnight

WEEKLY_DAG = """
from datetime import datetime, timezone

from airflow.sdk import DAG, CronPartitionTimetable

from airflow_provider_openrouter.operators.rankings import AppRankingsOperator, RankingsDailyOperator
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor

with DAG("t_weekly_partitions", schedule=CronPartitionTimetable("0 0 * * 1", timezone="UTC", run_offset=-1,
         key_format="%Y-%m-%d"), start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False):
    wait = OpenRouterAsOfSensor(task_id="wait_for_week", openrouter_conn_id="openrouter_default", mode="reschedule")
    rankings = RankingsDailyOperator(task_id="rankings_daily", output_uri={lake!r}, openrouter_conn_id="openrouter_default")
    apps = AppRankingsOperator(task_id="app_rankings", output_uri={lake!r}, openrouter_conn_id="openrouter_default",
                               sort="popular", max_apps=10)
    wait >> rankings >> apps
"""

INTERVAL_DAG = """
from datetime import datetime, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator

with DAG("t_interval_unchanged", schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
         start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False):
    RankingsDailyOperator(task_id="rankings_daily", output_uri={lake!r}, openrouter_conn_id="openrouter_default")
"""


@pytest.fixture
def lake(
    write_dag: Callable[[str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The example DAG file in the DAGs folder, writing to a fresh local lake."""
    lake = tmp_path / "lake"
    monkeypatch.setenv("OPENROUTER_OUTPUT_URI", lake.as_uri())
    monkeypatch.delenv("OPENROUTER_OUTPUT_CONN_ID", raising=False)
    monkeypatch.setenv("OPENROUTER_TASK_RETRIES", "0")
    write_dag("openrouter_partitioned", DAG_FILE.read_text())
    return lake


@pytest.fixture
def emulator(
    openrouter_emulator_factory: Callable[..., Emulator], openrouter_conn: Callable[..., str]
) -> Emulator:
    em = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    openrouter_conn(em, conn_id="openrouter_default")
    return em


def read(lake: Path, key: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    return storage.read_partition(ObjectStoragePath(f"{lake.as_uri()}/{key}"))


def rows(part: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in part.data.decode().splitlines()]


def test_the_example_dags_import_cleanly(lake: Path, dags_folder: Path) -> None:
    import gc

    from airflow.sdk import CronPartitionTimetable, PartitionedAssetTimetable

    from airflow_provider_openrouter.compat import DagBag

    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(dags_folder))
    assert (
        bag.import_errors == {}
        and bag.captured_warnings == {}
        and [str(w.message) for w in caught] == []
    )
    upstream, rollup = bag.get_dag("openrouter_partitioned"), bag.get_dag("openrouter_weekly_share")
    timetable = upstream.timetable
    assert isinstance(timetable, CronPartitionTimetable)
    assert (
        timetable.expression,
        timetable.timezone,
        timetable.run_offset,
        timetable.key_format,
    ) == ("0 0 * * *", "UTC", -1, "%Y-%m-%d")
    assert upstream.catchup is False and upstream.max_active_runs == 2
    assert [a.uri for a in upstream.get_task("rankings_daily").outlets] == [
        f"{lake.as_uri()}/rankings_daily"
    ]
    assert upstream.get_task("wait_for_day").downstream_task_ids == {"rankings_daily"}
    assert isinstance(rollup.timetable, PartitionedAssetTimetable)
    assert [a.uri for a in rollup.get_task("weekly_share").outlets] == [
        f"{lake.as_uri()}/rankings_weekly_share"
    ]


def test_a_daily_partition_run_lands_its_day_and_keys_its_events(
    lake: Path, emulator: Emulator, run_partition: Callable[..., PartitionRun]
) -> None:
    run = run_partition("openrouter_partitioned", "2025-07-04", midnight("2025-07-04"))
    assert run.state == "success" and set(run.task_states.values()) == {"success"}, run.task_states
    assert run.xcoms["wait_for_day"]["target_day"] == "2025-07-04"
    summary = run.xcoms["rankings_daily"]
    assert summary["window"] == {
        "start": "2025-07-04",
        "end": "2025-07-04",
        "days": 1,
        "clamped_from": None,
    }
    assert summary["partition_keys"] == ["2025-07-04"]
    assert sorted(p.name for p in (lake / "rankings_daily").iterdir()) == ["date=2025-07-04"]
    daily = read(lake, "rankings_daily/date=2025-07-04")
    assert daily.manifest["row_count"] == 51 and {r["date"] for r in rows(daily)} == {"2025-07-04"}
    assert (
        read(
            lake,
            "app_rankings/sort=popular/category=all/subcategory=all/window=2025-07-04_2025-07-04",
        )
        is not None
    )
    assert run.keys(f"{lake.as_uri()}/rankings_daily") == ["2025-07-04"]
    assert run.keys(f"{lake.as_uri()}/app_rankings/sort=popular/category=all/subcategory=all") == [
        "2025-07-04"
    ]
    event = next(e for e in run.asset_events if e["task_id"] == "rankings_daily")
    assert (
        event["extra"]["window"] == {"start": "2025-07-04", "end": "2025-07-04"}
        and event["extra"]["row_count"] == 51
    )
    # the interval DAG's economy: one probe (the sensor), one chunk of 2025 for the operator
    assert emulator.request_count("/datasets/rankings-daily") == 2


def test_a_weekly_partition_lands_its_seven_days_and_the_rollup_reads_them(
    lake: Path,
    emulator: Emulator,
    write_dag: Callable[[str, str], Path],
    run_partition: Callable[..., PartitionRun],
) -> None:
    write_dag("t_weekly_partitions", WEEKLY_DAG.format(lake=lake.as_uri()))
    week = [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]
    run = run_partition("t_weekly_partitions", "2025-03-03", midnight("2025-03-03"))
    assert run.state == "success", run.task_states
    assert run.xcoms["wait_for_week"]["target_day"] == "2025-03-09"  # the partition's last day
    assert run.keys(f"{lake.as_uri()}/rankings_daily") == [
        d.isoformat() for d in week
    ]  # one key per UTC day
    apps_uri = f"{lake.as_uri()}/app_rankings/sort=popular/category=all/subcategory=all"
    assert run.keys(apps_uri) == ["2025-03-03"]  # the window's key: the run's partition key
    assert (
        read(
            lake,
            "app_rankings/sort=popular/category=all/subcategory=all/window=2025-03-03_2025-03-09",
        )
        is not None
    )
    assert sorted(p.name for p in (lake / "rankings_daily").iterdir()) == [
        f"date={d}" for d in week
    ]

    rollup = run_partition("openrouter_weekly_share", "2025-03-03 (W10)", midnight("2025-03-03"))
    assert rollup.state == "success", rollup.task_states
    share = read(lake, "rankings_weekly_share/week=2025-03-03")
    assert share is not None
    manifest, out = share.manifest, rows(share)
    assert (
        manifest["dataset"] == "rankings-weekly-share"
        and manifest["partition_key"] == "2025-03-03 (W10)"
    )
    assert manifest["window"]["start"] == "2025-03-03" and manifest["window"]["end"] == "2025-03-09"
    inputs = manifest["inputs"]
    assert [i["window"]["start"] for i in inputs] == [d.isoformat() for d in week]
    daily = {d: read(lake, f"rankings_daily/date={d}") for d in week}
    for item, day in zip(inputs, week):
        assert (
            item["sha256"] == daily[day].sha256
            and item["row_count"] == daily[day].manifest["row_count"]
        )
        assert item["as_of"] == daily[day].manifest["meta"]["as_of"] == "2026-03-01T02:00:00Z"
        assert (
            item["citation"]
            == "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
        )
        assert (item["dataset"], item["partition"]) == (
            "rankings-daily",
            f"rankings_daily/date={day}",
        )
        assert item["window"] == {"start": day.isoformat(), "end": day.isoformat()}
    # the manifest schema of every dataset, with the inputs and computed_at as a derived partition's provenance
    assert manifest["meta"] == {"as_of": "2026-03-01T02:00:00Z", "derived_from": "rankings-daily"}
    assert (
        manifest["partition"] == "rankings_weekly_share/week=2025-03-03"
        and manifest["previous_sha256"] is None
    )
    assert (
        "request" not in manifest
        and manifest["computed_at"].endswith("Z")
        and manifest["format"] == "jsonl"
    )
    assert manifest["citation"] == (
        "Weekly rollup of OpenRouter rankings-daily 2025-03-03..2025-03-09: "
        "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
    )
    assert "not global model usage" in manifest["caveats"]
    # exact sums per model, shares of the week's listed tokens, "other" last, citation on every row
    totals: dict[str, int] = {}
    for part in daily.values():
        for row in rows(part):
            totals[row["model_permaslug"]] = (
                totals.get(row["model_permaslug"], 0) + row["total_tokens"]
            )
    assert {r["model_permaslug"]: r["total_tokens"] for r in out} == totals
    assert max(totals.values()) > 2**53  # exact integers, not floats
    grand = sum(totals.values())
    for r in out:
        assert r["share"] == r["total_tokens"] / grand and r["citation"] == manifest["citation"]
        assert (r["week_start"], r["week_end"]) == ("2025-03-03", "2025-03-09") and 1 <= r[
            "days_listed"
        ] <= 7
    assert out[-1]["model_permaslug"] == "other" and [
        r["total_tokens"] for r in out[:-1]
    ] == sorted((r["total_tokens"] for r in out[:-1]), reverse=True)
    assert rollup.keys(f"{lake.as_uri()}/rankings_weekly_share") == ["2025-03-03 (W10)"]
    assert rollup.xcoms["weekly_share"]["inputs"] == [d.isoformat() for d in week]


def test_the_rollup_fails_clearly_and_writes_nothing_when_a_day_is_missing(
    lake: Path,
    run_partition: Callable[..., PartitionRun],
    capfd: pytest.CaptureFixture[str],
) -> None:
    rollup = run_partition("openrouter_weekly_share", "2025-03-10 (W11)", midnight("2025-03-10"))
    assert rollup.state == "failed" and rollup.task_states == {"weekly_share": "failed"}
    assert (
        "rankings_daily/date=2025-03-10 has no committed partition: the weekly rollup needs all seven days"
        in capfd.readouterr().out
    )
    assert not (lake / "rankings_weekly_share").exists() and rollup.asset_events == []


def test_interval_runs_keep_emitting_unkeyed_events(
    tmp_path: Path,
    emulator: Emulator,
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
) -> None:
    """A keyed event would no longer trigger the non-partitioned DAGs scheduled on the asset."""
    lake = tmp_path / "lake"
    write_dag("t_interval_unchanged", INTERVAL_DAG.format(lake=lake.as_uri()))
    result = run_dag("t_interval_unchanged", datetime(2025, 7, 5, tzinfo=timezone.utc))
    assert result.state == "success"
    run = collect("t_interval_unchanged", result.run_id)
    assert [(e["uri"], e["partition_key"]) for e in run.asset_events] == [
        (f"{lake.as_uri()}/rankings_daily", None)
    ]
    assert "partition_keys" not in result.xcom("rankings_daily")
