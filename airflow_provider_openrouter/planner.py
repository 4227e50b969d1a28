"""Backfill planner: how many requests a DAG will spend over a date range, before you start it.

::

    python -m airflow_provider_openrouter.planner --dag-file dags/openrouter_daily.py \\
        --from 2025-01-01 --to 2026-11-22

or :func:`plan_backfill` from Python. The plan counts, per endpoint, the requests of a backfill
with this provider's economies (coalesced rankings chunks, the sensors' ``as_of`` memory) beside
what one-request-per-run fetching would cost, and how many days of the account's 500-request
quota that is. Counts are upper bounds where the API decides (``trending`` may need fewer pages).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from airflow_provider_openrouter.api.datasets.app_rankings import app_pages
from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.lake.chunk_cache import split_by_year
from airflow_provider_openrouter.windows.intervals import DATASET_FLOOR, Window, parse_day

DAILY_QUOTA = 500
#: Days after which a day's numbers are final (the operators' default ``restatement_days``).
RESTATEMENT_DAYS = 7


@dataclass(frozen=True)
class DagShape:
    """What of a DAG spends requests, per run."""

    sensors: int = 0
    rankings_tasks: int = 0
    #: ``max_apps`` of every app-rankings task instance of one run (mapped tasks expanded).
    app_max_apps: tuple[int, ...] = ()
    max_active_runs: int = 16
    #: ``lookback_days`` of each app-rankings task instance (same order as ``app_max_apps``; 0 = off).
    app_lookback_days: tuple[int, ...] = ()


@dataclass
class BackfillPlan:
    """Requests per endpoint for a backfill, with this provider and naively."""

    window: Window
    runs: int
    requests: dict[str, int] = field(default_factory=dict)
    naive: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def naive_total(self) -> int:
        return sum(self.naive.values())

    def quota_days(self, total: int | None = None) -> float:
        return (self.total if total is None else total) / DAILY_QUOTA

    def report(self) -> str:
        lines = [
            f"Backfill {self.window} ({self.runs} daily runs)",
            f"{'endpoint':<34}{'planned':>10}{'naive':>10}",
        ]
        for name in sorted(set(self.requests) | set(self.naive)):
            lines.append(f"{name:<34}{self.requests.get(name, 0):>10}{self.naive.get(name, 0):>10}")
        lines.append(f"{'total':<34}{self.total:>10}{self.naive_total:>10}")
        lines.append(
            f"quota: {self.quota_days():.2f} day(s) of the account's {DAILY_QUOTA} requests/day "
            f"(naive: {self.quota_days(self.naive_total):.2f}); requests per backfilled day: "
            f"{self.total / max(1, self.runs):.2f} (naive {self.naive_total / max(1, self.runs):.2f})"
        )
        return "\n".join(lines)


#: Runs ``airflow backfill create`` keeps active at once unless given ``--max-active-runs``
#: (it does not use the DAG's own ``max_active_runs``).
BACKFILL_MAX_ACTIVE_RUNS = 10


def plan_backfill(
    first_day: date | str,
    last_day: date | str,
    shape: DagShape,
    *,
    max_active_runs: int = BACKFILL_MAX_ACTIVE_RUNS,
    run_backwards: bool = False,
    cached_years: Sequence[int] = (),
    memory_proves_last_day: bool = False,
) -> BackfillPlan:
    """Plan a backfill of daily runs landing ``first_day .. last_day`` (inclusive UTC days).

    * rankings-daily: one request per calendar year touched (the chunk cache), minus years already
      cached; naive: one per run and rankings task.
    * sensor probes: none when the ``as_of`` memory already proves the last day; otherwise one per
      sensor task, whatever the concurrency (``max_active_runs``) and order (``run_backwards``):
      sensors probe one at a time (a lease), and a probe's window reaches the API's last complete
      day, so its answer proves every day of the backfill for the other sensors. Naive: one per run
      and sensor.
    * app-rankings: cannot be coalesced (each window is its own aggregate): pages per task per run;
      with ``lookback_days`` on an app task, at most its re-checks of non-final windows too
      (``app-rankings (lookback, at most)``). The rankings lookback costs nothing: it rides on the
      run's own request.
    """
    first, last = parse_day(first_day, "from"), parse_day(last_day, "to")
    if last < first:
        raise InvalidParameterError(f"--to {last} is before --from {first}.")
    first = max(first, DATASET_FLOOR)
    if last < first:
        raise InvalidParameterError(f"the range ends before {DATASET_FLOOR}: nothing to backfill.")
    window = Window(first, last)
    runs = window.days
    plan = BackfillPlan(window=window, runs=runs)
    if shape.rankings_tasks:
        years = {part.start.year for part in split_by_year(window)} - set(cached_years)
        plan.requests["rankings-daily (operators)"] = len(years) if shape.rankings_tasks else 0
        plan.naive["rankings-daily (operators)"] = runs * shape.rankings_tasks
    if shape.sensors:
        # single flight: one sensor probes at a time, and its answer reaches the API's last day, so it
        # proves every day of the backfill for the others (the as_of memory), in any order and concurrency
        plan.requests["rankings-daily (sensor probes)"] = (
            0 if memory_proves_last_day else shape.sensors
        )
        plan.naive["rankings-daily (sensor probes)"] = runs * shape.sensors
    if shape.app_max_apps:
        per_run = sum(len(app_pages(n)) for n in shape.app_max_apps)
        plan.requests["app-rankings"] = per_run * runs
        plan.naive["app-rankings"] = per_run * runs
        # lookback re-checks cost real requests: a window is re-checked while it is not final (the
        # last RESTATEMENT_DAYS windows of a range that ends near today), by each later run whose
        # lookback reaches it, unless it was written less than an hour before (the same backfill)
        lookback = sum(
            len(app_pages(n)) * days * min(runs, RESTATEMENT_DAYS)
            for n, days in zip(shape.app_max_apps, shape.app_lookback_days)
            if days
        )
        if lookback:
            plan.requests["app-rankings (lookback, at most)"] = lookback
            plan.naive["app-rankings (lookback, at most)"] = lookback
    return plan


def steady_state_requests(shape: DagShape) -> int:
    """Requests one daily run spends once the history is landed: one sensor probe (the rankings
    operator reuses it, lookback included), the app-rankings pages, and each app-rankings
    lookback's re-checked windows (one per day of ``lookback_days``, each its pages)."""
    probes = shape.sensors or shape.rankings_tasks
    apps = sum(len(app_pages(n)) for n in shape.app_max_apps)
    lookback = sum(
        len(app_pages(n)) * days for n, days in zip(shape.app_max_apps, shape.app_lookback_days)
    )
    return probes + apps + lookback


def dag_shape(dag: Any) -> DagShape:
    """Read a DAG's request-spending tasks: sensors, rankings operators, app operators (mapped ones expanded)."""
    from airflow_provider_openrouter.operators.rankings import (
        AppRankingsOperator,
        RankingsDailyOperator,
    )
    from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor

    sensors = rankings = 0
    apps: list[int] = []
    lookbacks: list[int] = []
    for task in dag.tasks:
        kind = getattr(task, "operator_class", type(task))
        if isinstance(kind, type) and issubclass(kind, OpenRouterAsOfSensor):
            sensors += 1
        elif isinstance(kind, type) and issubclass(kind, RankingsDailyOperator):
            rankings += 1
        elif isinstance(kind, type) and issubclass(kind, AppRankingsOperator):
            instances = _app_instances(task)
            apps.extend(instances)
            days = (
                dict(task.partial_kwargs).get("lookback_days", 0)
                if hasattr(task, "partial_kwargs")
                else task.lookback_days
            )
            lookbacks.extend([int(days or 0)] * len(instances))
    return DagShape(
        sensors=sensors,
        rankings_tasks=rankings,
        app_max_apps=tuple(apps),
        max_active_runs=dag.max_active_runs,
        app_lookback_days=tuple(lookbacks),
    )


def _app_instances(task: Any) -> list[int]:
    """``max_apps`` of each instance of an app-rankings task (one, or one per mapped value)."""
    if not hasattr(task, "expand_input"):
        return [task.max_apps]
    partial = dict(task.partial_kwargs)
    value = task.expand_input.value
    if isinstance(value, dict):  # .expand(category=[...], ...): the cross product
        combos = 1
        for values in value.values():
            if not isinstance(values, (list, tuple)):
                raise InvalidParameterError(
                    f"task {task.task_id!r} expands over a value known only at run time."
                )
            combos *= len(values)
        max_apps = value.get("max_apps")
        if max_apps is not None:
            return [m for m in max_apps for _ in range(combos // len(max_apps))]
        return [partial.get("max_apps", 50)] * combos
    if isinstance(value, (list, tuple)):  # .expand_kwargs([...])
        return [dict(partial, **kw).get("max_apps", 50) for kw in value]
    raise InvalidParameterError(
        f"task {task.task_id!r} expands over a value known only at run time."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_openrouter.planner", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--dag-file", required=True, help="the DAG file (e.g. dags/openrouter_daily.py)"
    )
    parser.add_argument("--dag-id", help="the DAG in that file (default: the only one)")
    parser.add_argument("--from", dest="first", required=True, help="first day to land, YYYY-MM-DD")
    parser.add_argument(
        "--to",
        dest="last",
        default=(date.today() - timedelta(days=1)).isoformat(),
        help="last day to land, YYYY-MM-DD (default: yesterday)",
    )
    parser.add_argument(
        "--max-active-runs",
        type=int,
        default=BACKFILL_MAX_ACTIVE_RUNS,
        help="the backfill's concurrency (airflow backfill create --max-active-runs; default 10)",
    )
    parser.add_argument(
        "--run-backwards",
        action="store_true",
        help="the backfill runs newest first (--run-backwards)",
    )
    parser.add_argument(
        "--cached-year",
        type=int,
        action="append",
        default=[],
        help="a year whose chunk is already cached",
    )
    parser.add_argument(
        "--memory-proves-last-day",
        action="store_true",
        help="the sensors' as_of memory already covers --to",
    )
    args = parser.parse_args(argv)

    from airflow_provider_openrouter.compat import DagBag

    bag = DagBag(dag_folder=args.dag_file, safe_mode=False)
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"{path}: {error}", file=sys.stderr)
        return 2
    if args.dag_id is None and len(bag.dags) != 1:
        print(
            f"{args.dag_file} holds {len(bag.dags)} DAGs; choose one with --dag-id: {', '.join(bag.dags)}",
            file=sys.stderr,
        )
        return 2
    dag = bag.dags[args.dag_id] if args.dag_id else next(iter(bag.dags.values()))
    plan = plan_backfill(
        args.first,
        args.last,
        dag_shape(dag),
        max_active_runs=args.max_active_runs,
        run_backwards=args.run_backwards,
        cached_years=args.cached_year,
        memory_proves_last_day=args.memory_proves_last_day,
    )
    print(f"DAG {dag.dag_id}: {dag_shape(dag)}")
    print(plan.report())
    print(
        f"steady state afterwards: {steady_state_requests(dag_shape(dag))} request(s) per daily run"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
