"""openrouter_daily: land each UTC day of OpenRouter's public rankings once the day is final.

Every run covers one UTC day (``CronDataIntervalTimetable("0 0 * * *", timezone="UTC")``: the run
that starts at D+1 00:00 UTC has the data interval [D, D+1) and lands day D):

1. ``wait_for_day`` (OpenRouterAsOfSensor): no request until D is over; then cheap probes until
   OpenRouter's ``meta.as_of`` proves D final. Deferrable when ``[operators] default_deferrable``.
2. ``rankings_daily``: top-50 models of D plus ``other`` -> ``{output}/rankings_daily/date=D/``
   (reuses the sensor's probe: no second request for the same day).
3. ``app_rankings_popular`` / ``app_rankings_trending``: top 50 apps of D, overall and for each app
   category (mapped), -> ``{output}/app_rankings/sort=.../category=.../subcategory=all/window=D_D/``.

About 12 requests per run, well inside 30/minute and 500/day. Each run's rankings also re-verify the
non-final days of the week before (``lookback_days``, on the sensor's one request) and rewrite the
ones OpenRouter restated. ``max_active_runs=2`` paces scheduled catch-up; ``airflow backfill create``
needs no special flags: with its defaults (10 runs at once) the sensors probe once in all and each
calendar year costs one rankings request (see the planner:
``python -m airflow_provider_openrouter.planner --dag-file dags/openrouter_daily.py --from ...``).
Assets (for asset-scheduled downstream DAGs): ``{output}/rankings_daily``
and ``{output}/app_rankings/sort={popular,trending}``.

Configuration (environment, read when the file is parsed):

* ``OPENROUTER_OUTPUT_URI``: where to write, any ObjectStoragePath URL (default ``file://<cwd>/data``).
* ``OPENROUTER_OUTPUT_CONN_ID``: the Airflow connection of that store (default none: local files).
* ``OPENROUTER_TASK_RETRIES``: retries per task (default 2); ``OPENROUTER_TASK_RETRY_DELAY``:
  seconds between them (default 300).
* ``OPENROUTER_POOL``: the Airflow pool of every task that calls OpenRouter (default ``openrouter``;
  create it: ``airflow pools set openrouter 4 "OpenRouter Data API"``).
* The Airflow connection ``openrouter_default`` holds the API key (type ``openrouter``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG, Asset
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.api.datasets.app_rankings import APP_CATEGORIES, APP_SORTS
from airflow_provider_openrouter.operators.rankings import (
    AppRankingsOperator,
    RankingsDailyOperator,
)
from airflow_provider_openrouter.runtime.pool import openrouter_pool
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor

OUTPUT_URI = (os.environ.get("OPENROUTER_OUTPUT_URI") or (Path.cwd() / "data").as_uri()).rstrip("/")
OUTPUT_CONN_ID = os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None
OPENROUTER_CONN_ID = "openrouter_default"
#: Every task that calls OpenRouter runs in this pool ($OPENROUTER_POOL, default "openrouter").
OPENROUTER_POOL = openrouter_pool()
RETRY_DELAY = timedelta(seconds=float(os.environ.get("OPENROUTER_TASK_RETRY_DELAY", "300")))
#: All apps, then each category (subcategories would multiply requests for little insight).
CATEGORIES: list[str | None] = [None, *APP_CATEGORIES]

with DAG(
    dag_id="openrouter_daily",
    description="OpenRouter model and app rankings, one final UTC day per run, with manifests and citations.",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=2,
    max_active_tasks=4,
    default_args={
        "retries": int(os.environ.get("OPENROUTER_TASK_RETRIES", "2")),
        "retry_delay": RETRY_DELAY,
    },
    tags=["openrouter", "example"],
    doc_md=__doc__,
) as dag:
    wait_for_day = OpenRouterAsOfSensor(
        task_id="wait_for_day",
        openrouter_conn_id=OPENROUTER_CONN_ID,
        pool=OPENROUTER_POOL,
        settle=timedelta(0),
        poke_interval=timedelta(minutes=10),
        max_wait=timedelta(hours=1),
        timeout=timedelta(hours=20),
        mode="reschedule",  # when not deferrable: free the worker slot between probes
    )

    rankings_daily = RankingsDailyOperator(
        task_id="rankings_daily",
        output_uri=OUTPUT_URI,
        output_conn_id=OUTPUT_CONN_ID,
        openrouter_conn_id=OPENROUTER_CONN_ID,
        pool=OPENROUTER_POOL,
    )

    app_rankings = [
        AppRankingsOperator.partial(
            task_id=f"app_rankings_{sort}",
            output_uri=OUTPUT_URI,
            output_conn_id=OUTPUT_CONN_ID,
            openrouter_conn_id=OPENROUTER_CONN_ID,
            pool=OPENROUTER_POOL,
            sort=sort,
            max_apps=50,
            outlets=[Asset(f"{OUTPUT_URI}/app_rankings/sort={sort}")],
            map_index_template="{{ task.category or 'all' }}",
        ).expand(category=CATEGORIES)
        for sort in APP_SORTS
    ]

    wait_for_day >> rankings_daily >> app_rankings
