"""planner: request counts of a backfill, pure (and the DAG reader on the example DAG)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.planner import DagShape, main, plan_backfill

SHAPE = DagShape(sensors=1, rankings_tasks=1, app_max_apps=(50, 150), max_active_runs=2)


def test_full_history_plan_counts_years_one_probe_and_pages() -> None:
    plan = plan_backfill("2025-01-01", "2026-11-22", SHAPE)
    assert plan.runs == 691
    assert plan.requests["rankings-daily (operators)"] == 2  # one chunk per calendar year
    assert plan.requests["rankings-daily (sensor probes)"] == 1  # single flight, proves every day
    assert plan.requests["app-rankings"] == 691 * 3  # 1 page + 2 pages per run
    assert (
        plan.naive["rankings-daily (operators)"]
        == plan.naive["rankings-daily (sensor probes)"]
        == 691
    )
    assert plan.total == 2 + 1 + 2073 and plan.naive_total == 691 * 5
    assert "quota:" in plan.report() and f"{plan.total / 500:.2f} day(s)" in plan.report()


def test_order_and_concurrency_do_not_change_the_probes() -> None:
    for kwargs in (
        {"max_active_runs": 2, "run_backwards": True},
        {"max_active_runs": 10},
        {"max_active_runs": 50},
    ):
        plan = plan_backfill("2025-01-01", "2026-11-22", SHAPE, **kwargs)  # type: ignore[arg-type]
        assert plan.requests["rankings-daily (sensor probes)"] == 1, kwargs


def test_cached_years_memory_and_floor() -> None:
    plan = plan_backfill(
        "2024-06-01", "2025-03-01", SHAPE, cached_years=[2025], memory_proves_last_day=True
    )
    assert plan.runs == 60  # clamped to the dataset's first day
    assert plan.requests["rankings-daily (operators)"] == 0
    assert plan.requests["rankings-daily (sensor probes)"] == 0
    with pytest.raises(InvalidParameterError, match="before"):
        plan_backfill("2025-03-02", "2025-03-01", SHAPE)
    with pytest.raises(InvalidParameterError, match="nothing to backfill"):
        plan_backfill("2024-01-01", "2024-02-01", SHAPE)


def test_cli_reads_the_example_dag(capsys: pytest.CaptureFixture[str]) -> None:
    dag_file = Path(__file__).resolve().parents[1] / "dags" / "openrouter_daily.py"
    assert main(["--dag-file", str(dag_file), "--from", "2025-01-01", "--to", "2025-01-31"]) == 0
    out = capsys.readouterr().out
    assert (
        "sensors=1, rankings_tasks=1" in out
        and "app_max_apps=(50, 50, 50, 50, 50, 50, 50, 50, 50, 50)" in out
    )
    assert "rankings-daily (operators)                 1        31" in out
    assert "app-rankings                             310       310" in out


def test_app_lookback_requests_are_counted_and_the_rankings_lookback_is_free() -> None:
    from airflow_provider_openrouter.planner import steady_state_requests

    shape = DagShape(sensors=1, rankings_tasks=1, app_max_apps=(50, 150), app_lookback_days=(0, 3))
    plan = plan_backfill("2026-11-01", "2026-11-22", shape)
    assert (
        plan.requests["app-rankings (lookback, at most)"] == 2 * 3 * 7
    )  # 2 pages, 3 days, the 7 non-final windows
    assert (
        plan.requests["rankings-daily (operators)"] == 1
        and plan.requests["rankings-daily (sensor probes)"] == 1
    )
    assert (
        "app-rankings (lookback, at most)"
        not in plan_backfill("2026-11-01", "2026-11-22", SHAPE).requests
    )
    assert steady_state_requests(shape) == 1 + (1 + 2) + 2 * 3
    assert steady_state_requests(SHAPE) == 1 + 3
