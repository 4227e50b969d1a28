"""openrouter_analytics: land each UTC day of your organisation's own OpenRouter usage (beta analytics API).

Every run covers one UTC day (``CronDataIntervalTimetable("0 0 * * *", timezone="UTC")``: the run
that starts at D+1 00:00 UTC has the data interval [D, D+1) and queries exactly that time range):

1. ``tokens_cost_by_model``: requests, tokens and cost per model for D
   -> ``{output}/analytics/tokens_cost_by_model/date=D/``.
2. ``requests_by_app``: requests and tokens per app for D -> ``{output}/analytics/requests_by_app/date=D/``.

Each day's answer is split into smaller time slices when OpenRouter truncates it or times out, and
the slices are added up exactly; a day that cannot be completed fails the task and writes nothing.
Costs are exact decimals (JSON numbers with every digit). About 4 requests per run (one ``meta``
and one query per task). Assets: ``{output}/analytics/tokens_cost_by_model`` and
``{output}/analytics/requests_by_app``.

Configuration (environment, read when the file is parsed):

* ``OPENROUTER_OUTPUT_URI``: where to write, any ObjectStoragePath URL (default ``file://<cwd>/data``).
* ``OPENROUTER_OUTPUT_CONN_ID``: the Airflow connection of that store (default none: local files).
* ``OPENROUTER_TASK_RETRIES``: retries per task (default 2, ten minutes apart: late usage events).
* ``OPENROUTER_POOL``: the Airflow pool of every task that calls OpenRouter (default ``openrouter``).
* The Airflow connection ``openrouter_default`` (type ``openrouter``) must reach a *management key*:
  put it in the extra ``management_api_key``, or name another connection holding it in the extra
  ``management_conn_id``. A plain API key gets a 403 and a message saying exactly this.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.operators.analytics import AnalyticsQueryOperator
from airflow_provider_openrouter.runtime.pool import openrouter_pool

OUTPUT_URI = (os.environ.get("OPENROUTER_OUTPUT_URI") or (Path.cwd() / "data").as_uri()).rstrip("/")
OUTPUT_CONN_ID = os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None
OPENROUTER_CONN_ID = "openrouter_default"
#: Every task that calls OpenRouter runs in this pool ($OPENROUTER_POOL, default "openrouter").
OPENROUTER_POOL = openrouter_pool()

with DAG(
    dag_id="openrouter_analytics",
    description="Your organisation's OpenRouter usage (beta analytics API), one complete UTC day per run, exact costs.",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=2,
    default_args={
        "retries": int(os.environ.get("OPENROUTER_TASK_RETRIES", "2")),
        "retry_delay": timedelta(minutes=10),
    },
    tags=["openrouter", "analytics", "example"],
    doc_md=__doc__,
) as dag:
    tokens_cost_by_model = AnalyticsQueryOperator(
        task_id="tokens_cost_by_model",
        output_uri=OUTPUT_URI,
        output_conn_id=OUTPUT_CONN_ID,
        openrouter_conn_id=OPENROUTER_CONN_ID,
        pool=OPENROUTER_POOL,
        metrics=["request_count", "prompt_tokens", "completion_tokens", "total_tokens", "cost"],
        dimensions=["model"],
        granularity="day",
        order_by={"field": "cost", "direction": "desc"},
    )

    requests_by_app = AnalyticsQueryOperator(
        task_id="requests_by_app",
        output_uri=OUTPUT_URI,
        output_conn_id=OUTPUT_CONN_ID,
        openrouter_conn_id=OPENROUTER_CONN_ID,
        pool=OPENROUTER_POOL,
        metrics=["request_count", "total_tokens"],
        dimensions=["app"],
        granularity="day",
    )
