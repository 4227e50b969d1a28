"""openrouter_partitioned: one asset partition per final UTC day, and a weekly rollup of all seven.

The run starting at D+1 00:00 UTC (``partition_key`` D) lands D once OpenRouter proves it final.
``openrouter_weekly_share`` runs per ISO week once all seven days landed: it reads them with
``lake.read_records`` and lands each model's share of the week's tokens with ``lake.land_partitions``.
Enable this DAG or ``openrouter_daily`` per output; configuration (environment, connection) as there.
Needs Airflow 3.3 (``RollupMapper``, ``WeekWindow``); on older Airflow the file's import error says so.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, ObjectStoragePath, task

from airflow_provider_openrouter import lake
from airflow_provider_openrouter.api.datasets import CAVEATS, rankings_daily
from airflow_provider_openrouter.compat import (  # Airflow < 3.3: an import error naming the version needed
    CronPartitionTimetable,
    PartitionedAssetTimetable,
    RollupMapper,
    StartOfWeekMapper,
    WeekWindow,
)
from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.lake import PartitionIntegrityError
from airflow_provider_openrouter.operators.rankings import AppRankingsOperator as Apps
from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator as Rankings
from airflow_provider_openrouter.runtime.pool import openrouter_pool
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor
from airflow_provider_openrouter.windows import Window, days_for_partition

OUTPUT_URI = (os.environ.get("OPENROUTER_OUTPUT_URI") or (Path.cwd() / "data").as_uri()).rstrip("/")
OUTPUT_CONN_ID = os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None
RETRIES = int(os.environ.get("OPENROUTER_TASK_RETRIES", "2"))
#: Every task that calls OpenRouter runs in this pool ($OPENROUTER_POOL, default "openrouter").
OPENROUTER_POOL = openrouter_pool()
ARGS = {"retries": RETRIES, "retry_delay": timedelta(minutes=5)}
TAGS = ["openrouter", "example", "partitioned"]
COMMON = {"catchup": False, "default_args": ARGS, "tags": TAGS, "doc_md": __doc__}
RANKINGS_DAILY = Asset(f"{OUTPUT_URI}/rankings_daily")
WEEKLY_SHARE = Asset(f"{OUTPUT_URI}/rankings_weekly_share")
WEEKLY_CAVEATS = CAVEATS + (
    " Shares are of the tokens OpenRouter lists for the week: the top 50 models of each day plus the "
    "'other' row; a model's tokens on days it was outside the top 50 are inside 'other'."
)
DAILY = CronPartitionTimetable("0 0 * * *", timezone="UTC", run_offset=-1, key_format="%Y-%m-%d")
WEEK = RollupMapper(upstream_mapper=StartOfWeekMapper(input_format="%Y-%m-%d"), window=WeekWindow())
COLUMNS = ("week_start", "week_end", "model_permaslug", "total_tokens", "share", "days_listed")


with DAG(
    dag_id="openrouter_partitioned",
    description="OpenRouter model and app rankings as one asset partition per final UTC day.",
    schedule=DAILY,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    max_active_runs=2,
    max_active_tasks=4,
    **COMMON,
) as dag:
    wait_for_day = OpenRouterAsOfSensor(
        task_id="wait_for_day",
        pool=OPENROUTER_POOL,
        poke_interval=timedelta(minutes=10),
        timeout=timedelta(hours=20),
        mode="reschedule",
    )
    out = {"output_uri": OUTPUT_URI, "output_conn_id": OUTPUT_CONN_ID}
    rankings = Rankings(
        task_id="rankings_daily", outlets=[RANKINGS_DAILY], pool=OPENROUTER_POOL, **out
    )
    apps = Apps(
        task_id="app_rankings_popular", sort="popular", max_apps=50, pool=OPENROUTER_POOL, **out
    )
    wait_for_day >> rankings >> apps


def weekly_shares(week: Window, rows: list[dict[str, Any]], citation: str) -> list[dict[str, Any]]:
    """Each model's share of the week's listed tokens (exact integer sums; ``other`` last)."""
    tokens: Counter[str] = Counter()
    listed: Counter[str] = Counter()
    for row in rows:
        slug, count = row["model_permaslug"], row["total_tokens"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PartitionIntegrityError(f"total_tokens {count!r} of {slug!r} is not a count.")
        tokens[slug] += count
        listed[slug] += 1
    total, first, last = sum(tokens.values()), week.start.isoformat(), week.end.isoformat()
    order = sorted(tokens, key=lambda slug: (slug == "other", -tokens[slug], slug))
    shares = [(slug, tokens[slug], tokens[slug] / total if total else 0.0) for slug in order]
    values = [(first, last, slug, count, share, listed[slug]) for slug, count, share in shares]
    return [{**dict(zip(COLUMNS, row, strict=True)), "citation": citation} for row in values]


def land_weekly_share(base: ObjectStoragePath, key: str, date: Any, by: Sequence[str]) -> dict:
    """Read the week's seven daily partitions, land the weekly share partition, return a summary."""
    week = days_for_partition(key, date)
    if week is None or week.days != 7:
        raise InvalidParameterError(f"partition {key!r} is not a whole ISO week of the datasets.")
    days = [day.isoformat() for day in week.iter_days()]
    if set(by) - set(days):
        raise InvalidParameterError(f"The run was triggered by days outside week {week}: {by}.")
    keys = [rankings_daily.partition_key(day) for day in week.iter_days()]
    inputs = lake.read_partitions(base, keys, needed_by="the weekly rollup needs all seven days")
    rows = [row for part in inputs for row in lake.read_records(part, date_column="date")]
    sources = " ".join(lake.citations(inputs))  # one line per distinct as_of
    citation = f"Weekly rollup of OpenRouter rankings-daily {week}: {sources}"
    share = lake.DerivedPartition(
        key=f"rankings_weekly_share/week={days[0]}",
        records=weekly_shares(week, rows, citation),
        inputs=inputs,
        window=week,
        meta={"derived_from": rankings_daily.NAME},
        citation=citation,
        extra={"partition_key": key},
    )
    [landed] = lake.land_partitions(base, "rankings-weekly-share", [share], caveats=WEEKLY_CAVEATS)
    as_of = [part.manifest["meta"].get("as_of") for part in inputs]
    week_record = {"start": days[0], "end": days[-1], "days": 7}
    done = {"partition": landed.key, "status": landed.status, "row_count": landed.row_count}
    return {"partition_key": key, "week": week_record, "inputs": days, "as_of": as_of} | done


with DAG(
    dag_id="openrouter_weekly_share",
    description="Each model's share of the week's OpenRouter tokens, once all seven days landed.",
    schedule=PartitionedAssetTimetable(assets=RANKINGS_DAILY, default_partition_mapper=WEEK),
    max_active_runs=1,
    **COMMON,
) as weekly_dag:

    @task(outlets=[WEEKLY_SHARE])
    def weekly_share(**context: Any) -> dict[str, Any]:
        """Each model's share of the week's tokens -> ``{output}/rankings_weekly_share/week=MONDAY/``."""
        events = context["triggering_asset_events"][RANKINGS_DAILY]
        days = sorted({e.partition_key for e in events if getattr(e, "partition_key", None)})
        base = ObjectStoragePath(OUTPUT_URI, conn_id=OUTPUT_CONN_ID)
        key, date = context["partition_key"], context.get("partition_date")
        summary = land_weekly_share(base, key, date, days)
        extra = {name: summary[name] for name in ("week", "inputs", "as_of", "row_count")}
        context["outlet_events"][WEEKLY_SHARE].extra = {"dataset": "rankings-weekly-share", **extra}
        return summary

    weekly_share()
