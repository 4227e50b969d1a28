"""The run's days as the operators and the sensor resolve them, against Airflow's own partition timetables.

No metadata DB: timetables, DAG objects and plain context dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.operators.base import event_partition_keys
from airflow_provider_openrouter.operators.rankings import (
    AppRankingsOperator,
    RankingsDailyOperator,
)
from airflow_provider_openrouter.runtime.run_window import partition_spec_of, run_days
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor
from airflow_provider_openrouter.windows.intervals import Window, day_complete_at
from tests.partitions.conftest import midnight

ONE_DAY = timedelta(days=1)


def sdk_partition_timetable(
    cron: str = "0 0 * * *", tz: str = "UTC", key_format: str = "%Y-%m-%d", run_offset: int = -1
) -> Any:
    from airflow.sdk import CronPartitionTimetable

    return CronPartitionTimetable(cron, timezone=tz, run_offset=run_offset, key_format=key_format)


def core_timetable(sdk: Any) -> Any:
    """The scheduler's side of a timetable (what the scheduler and backfill compute partitions with)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(sdk)


def no_window() -> str:
    return "NO WINDOW"


# ---------------------------------------------------------------------- the timetable's spec
@pytest.mark.parametrize(
    "cron,key_format,period",
    [
        ("0 0 * * *", "%Y-%m-%d", "daily"),
        ("@weekly", "%Y-%m-%d", "weekly"),
        ("0 0 * * 1", "%Y-%m-%d (W%V)", "weekly"),
        ("0 0 1 * *", "%Y-%m", "monthly"),
    ],
)
def test_sdk_and_scheduler_timetables_give_the_same_spec(
    cron: str, key_format: str, period: str
) -> None:
    sdk = sdk_partition_timetable(cron, key_format=key_format)
    spec = partition_spec_of(sdk)
    assert spec is not None and spec.period == period and spec.key_format == key_format
    assert partition_spec_of(core_timetable(sdk)) == spec


def test_other_timetables_have_no_spec() -> None:
    from airflow.sdk import (
        Asset,
        CronTriggerTimetable,
        PartitionedAssetTimetable,
        PartitionedAtRuntime,
    )
    from airflow.timetables.interval import CronDataIntervalTimetable

    for timetable in (
        None,
        CronTriggerTimetable("0 0 * * *", timezone="UTC"),
        CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        PartitionedAssetTimetable(assets=Asset("file:///x")),
        PartitionedAtRuntime(),
    ):
        assert partition_spec_of(timetable) is None


def test_an_hourly_or_local_partition_timetable_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="00:00"):
        partition_spec_of(sdk_partition_timetable("0 * * * *"))
    with pytest.raises(InvalidParameterError, match="Europe/Paris"):
        partition_spec_of(sdk_partition_timetable(tz="Europe/Paris"))
    with pytest.raises(InvalidParameterError, match="key_format"):
        partition_spec_of(sdk_partition_timetable(key_format="%Y-%m-%dT%H:%M:%S (W%V)"))


# ---------------------------------------------------------------------- agreement with Airflow's partitions
@pytest.mark.parametrize(
    "cron,key_format",
    [
        ("0 0 * * *", "%Y-%m-%d"),
        ("0 0 * * *", "%Y-%m-%dT%H:%M:%S"),
        ("0 0 * * 1", "%Y-%m-%d"),
        ("0 0 * * 0", "%Y%m%d"),
        ("0 0 1 * *", "%Y-%m"),
    ],
)
def test_backfill_partitions_tile_the_range_and_keys_agree(cron: str, key_format: str) -> None:
    """What ``airflow backfill create`` iterates (partition dates, keys) maps onto consecutive UTC days."""
    sdk = sdk_partition_timetable(cron, key_format=key_format)
    spec = partition_spec_of(sdk)
    infos = list(
        core_timetable(sdk).iter_partition_dagrun_infos(
            earliest=midnight("2025-01-01"), latest=midnight("2025-12-31")
        )
    )
    assert infos and all(info.data_interval is None for info in infos)
    windows = [
        run_days(
            {
                "partition_key": i.partition_key,
                "partition_date": i.partition_date,
                "dag": _Dag(sdk),
            },
            no_window(),
        )
        for i in infos
    ]
    for before, after in zip(windows, windows[1:]):
        assert before is not None and after is not None and after.start == before.end + ONE_DAY
    for info, window in zip(infos, windows):
        assert (
            window.start == info.partition_date.date()
            and spec.format_key(window.start) == info.partition_key
        )


def test_the_scheduled_run_with_run_offset_minus_one_starts_when_its_last_day_is_over() -> None:
    """``run_offset=-1``: the run at D+1 00:00 has the partition D, whose last day ends at the run's start."""
    from airflow.timetables.base import TimeRestriction

    for cron in ("0 0 * * *", "0 0 * * 1", "0 0 1 * *"):
        sdk = sdk_partition_timetable(cron)
        core = core_timetable(sdk)
        info = core.next_dagrun_info_v2(
            last_dagrun_info=None, restriction=TimeRestriction(midnight("2025-03-01"), None, True)
        )
        for _ in range(5):
            window = run_days(
                {
                    "partition_key": info.partition_key,
                    "partition_date": info.partition_date,
                    "dag": _Dag(sdk),
                },
                no_window(),
            )
            assert day_complete_at(window.end) == info.run_after, (cron, info)
            info = core.next_dagrun_info_v2(
                last_dagrun_info=info,
                restriction=TimeRestriction(midnight("2025-03-01"), None, True),
            )


# ---------------------------------------------------------------------- run_days: which source wins
class _Dag:
    def __init__(self, timetable: Any) -> None:
        self.timetable = timetable


def test_a_partition_wins_over_a_data_interval_and_intervals_stay_as_they_were() -> None:
    dag = _Dag(sdk_partition_timetable("0 0 * * 1"))
    both = {
        "partition_key": "2025-03-03",
        "partition_date": midnight("2025-03-03"),
        "dag": dag,
        "data_interval_start": midnight("2025-03-10"),
        "data_interval_end": midnight("2025-03-10"),
    }
    assert run_days(both, no_window()) == Window(date(2025, 3, 3), date(2025, 3, 9))
    interval = {
        "data_interval_start": midnight("2025-03-03"),
        "data_interval_end": midnight("2025-03-04"),
        "dag": _Dag(None),
        "partition_key": None,
        "partition_date": None,
    }
    assert run_days(interval, no_window()) == Window(date(2025, 3, 3), date(2025, 3, 3))
    with pytest.raises(InvalidParameterError, match="NO WINDOW"):
        run_days(
            {"partition_key": None, "data_interval_start": None, "data_interval_end": None},
            no_window(),
        )


def test_a_partitioned_asset_dag_reads_the_mappers_key() -> None:
    from airflow.sdk import Asset, PartitionedAssetTimetable

    dag = _Dag(PartitionedAssetTimetable(assets=Asset("file:///x")))
    assert run_days(
        {"partition_key": "2025-03-03 (W10)", "partition_date": midnight("2025-03-03"), "dag": dag},
        no_window(),
    ) == Window(date(2025, 3, 3), date(2025, 3, 9))
    with pytest.raises(InvalidParameterError, match="window_start and window_end"):
        run_days({"partition_key": "us", "partition_date": None, "dag": dag}, no_window())


def test_the_task_falls_back_to_its_own_dag_when_the_context_has_none() -> None:
    from types import SimpleNamespace

    task = SimpleNamespace(dag=_Dag(sdk_partition_timetable("0 0 1 * *", key_format="%Y-%m")))
    assert run_days(
        {"partition_key": "2025-02", "partition_date": None, "task": task}, no_window()
    ) == Window(date(2025, 2, 1), date(2025, 2, 28))


# ---------------------------------------------------------------------- event keys
def test_event_keys_are_one_per_day_written_or_the_runs_key() -> None:
    days = [(None, None, Window(date(2025, 3, d), date(2025, 3, d))) for d in (5, 3, 4)]
    assert event_partition_keys(
        {"partition_key": "2025-03-03", "partition_date": midnight("2025-03-03")}, days
    ) == ["2025-03-03", "2025-03-04", "2025-03-05"]
    week = [(None, None, Window(date(2025, 3, 3), date(2025, 3, 9)))]
    assert event_partition_keys(
        {"partition_key": "2025-03-03 (W10)", "partition_date": None}, week
    ) == ["2025-03-03 (W10)"]
    assert event_partition_keys({"partition_key": None, "partition_date": None}, days) == []
    assert event_partition_keys({}, week) == []


# ---------------------------------------------------------------------- parse-time checks
DAG_SOURCE = """
from datetime import datetime, timezone
from airflow.sdk import DAG, CronPartitionTimetable
from airflow_provider_openrouter.operators.rankings import AppRankingsOperator, RankingsDailyOperator
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor

with DAG("{dag_id}", schedule=CronPartitionTimetable({cron!r}, timezone={tz!r}, key_format={fmt!r}),
         start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False):
    {task}
"""
TASKS = {
    "rankings": 'RankingsDailyOperator(task_id="rankings", output_uri="file:///tmp/lake")',
    "apps": 'AppRankingsOperator(task_id="apps", output_uri="file:///tmp/lake")',
    "sensor": 'OpenRouterAsOfSensor(task_id="sensor")',
}


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize(
    "cron,tz,fmt,match",
    [
        ("0 0 * * *", "Europe/Paris", "%Y-%m-%d", "timezone is 'Europe/Paris'"),
        ("0 * * * *", "UTC", "%Y-%m-%dT%H", "does not fire at 00:00 only"),
        ("0 0 * * *", "UTC", "%Y-%m", "does not map daily partitions onto UTC days"),
    ],
)
def test_a_partition_schedule_that_is_not_whole_utc_days_is_a_dag_import_error(
    task: str,
    cron: str,
    tz: str,
    fmt: str,
    match: str,
    write_dag: Callable[[str, str], Path],
    dag_import_error: Callable[[str], str],
) -> None:
    dag_id = f"t_bad_partitions_{task}"
    write_dag(dag_id, DAG_SOURCE.format(dag_id=dag_id, cron=cron, tz=tz, fmt=fmt, task=TASKS[task]))
    error = dag_import_error(f"{dag_id}.py")
    assert "InvalidParameterError" in error and match in error and f"DAG '{dag_id}'" in error, error


def test_good_partition_schedules_and_tasks_outside_a_dag_parse() -> None:
    from airflow.sdk import DAG

    for n, (cron, fmt) in enumerate(
        (("0 0 * * *", "%Y-%m-%d"), ("0 0 * * 1", "%Y-%m-%d"), ("@monthly", "%Y-%m"))
    ):
        with DAG(
            f"t_good_{n}",
            schedule=sdk_partition_timetable(cron, key_format=fmt),
            start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
        ):
            RankingsDailyOperator(task_id="rankings", output_uri="file:///tmp/lake")
            AppRankingsOperator(task_id="apps", output_uri="file:///tmp/lake")
            OpenRouterAsOfSensor(task_id="sensor")
    RankingsDailyOperator(
        task_id="loose", output_uri="file:///tmp/lake"
    )  # no DAG: checked at run time
