"""openrouter_session_cost: land OpenRouter's weekly session-cost snapshot once, as soon as it is out.

``GET /datasets/session-cost`` serves one snapshot at a time: the median USD spend per session by
harness (app), model and turn range over a trailing window (30 days), refreshed weekly. OpenRouter's
documented example is a window ending on a Monday, published the next day at 02:00 UTC, so the DAG
runs every Tuesday at 03:00 UTC (``CronTriggerTimetable("0 3 * * 2", timezone="UTC")``):

1. ``wait_for_snapshot`` (OpenRouterSessionCostSensor): the snapshot due for the run is the newest
   weekly window that ended before it. No request while the remembered snapshot is the one due,
   none before the awaited window is over plus ``settle`` (2 hours); then one-cell probes backing
   off from 30 minutes to 6 hours, for at most 3 days. Deferrable when ``[operators] default_deferrable``.
2. ``session_cost``: every cell of the current snapshot (500 per request) ->
   ``{output}/session_cost/app_slug=all/model=all/turn_range=all/window_end=YYYY-MM-DD/``
   (``data.jsonl`` + ``_manifest.json``). The same
   snapshot again writes nothing; no snapshot published skips the task.

Requests per weekly run: one probe, plus one per 500 cells (the emulator's 1200 cells: 4 in all).
Old snapshots cannot be fetched, so there is nothing to backfill (``catchup=False``).
Asset (for asset-scheduled downstream DAGs):
``{output}/session_cost/app_slug=all/model=all/turn_range=all``.

Configuration (environment, read when the file is parsed): ``OPENROUTER_OUTPUT_URI`` (default
``file://<cwd>/data``), ``OPENROUTER_OUTPUT_CONN_ID``, ``OPENROUTER_TASK_RETRIES`` (default 2),
``OPENROUTER_POOL`` (the pool of every task that calls OpenRouter, default ``openrouter``);
the Airflow connection ``openrouter_default`` holds the API key (type ``openrouter``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG
from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_openrouter.operators.session_cost import SessionCostOperator
from airflow_provider_openrouter.runtime.pool import openrouter_pool
from airflow_provider_openrouter.sensors.session_cost import OpenRouterSessionCostSensor

OUTPUT_URI = (os.environ.get("OPENROUTER_OUTPUT_URI") or (Path.cwd() / "data").as_uri()).rstrip("/")
OUTPUT_CONN_ID = os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None
OPENROUTER_CONN_ID = "openrouter_default"
#: Every task that calls OpenRouter runs in this pool ($OPENROUTER_POOL, default "openrouter").
OPENROUTER_POOL = openrouter_pool()

with DAG(
    dag_id="openrouter_session_cost",
    description="OpenRouter median cost per session by harness and model, one weekly snapshot per partition.",
    schedule=CronTriggerTimetable("0 3 * * 2", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": int(os.environ.get("OPENROUTER_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
    },
    tags=["openrouter", "example"],
    doc_md=__doc__,
):
    wait_for_snapshot = OpenRouterSessionCostSensor(
        task_id="wait_for_snapshot",
        openrouter_conn_id=OPENROUTER_CONN_ID,
        pool=OPENROUTER_POOL,
        settle=timedelta(hours=2),
        poke_interval=timedelta(minutes=30),
        max_wait=timedelta(hours=6),
        timeout=timedelta(days=3),
        mode="reschedule",  # when not deferrable: free the worker slot between probes
    )

    session_cost = SessionCostOperator(
        task_id="session_cost",
        output_uri=OUTPUT_URI,
        output_conn_id=OUTPUT_CONN_ID,
        openrouter_conn_id=OPENROUTER_CONN_ID,
        pool=OPENROUTER_POOL,
    )

    wait_for_snapshot >> session_cost
