"""openrouter_partitioned: one asset partition per UTC day, and a weekly rollup that waits for all seven.

Two DAGs (Airflow 3.2+ partitioned scheduling):

``openrouter_partitioned`` runs on ``CronPartitionTimetable("0 0 * * *", timezone="UTC", run_offset=-1,
key_format="%Y-%m-%d")``: the run that starts at D+1 00:00 UTC has ``partition_key`` ``D`` (and
``partition_date`` D 00:00 UTC, no data interval) and lands day D:

1. ``wait_for_day`` (OpenRouterAsOfSensor): no request until D is over; then probes until
   OpenRouter's ``meta.as_of`` proves D final (a day already proven costs nothing).
2. ``rankings_daily``: top-50 models of D plus ``other`` -> ``{output}/rankings_daily/date=D/``; its
   asset event on ``{output}/rankings_daily`` carries the partition key ``D`` (one key per UTC day
   written).
3. ``app_rankings_popular``: the top 50 apps of D -> ``{output}/app_rankings/sort=popular/category=all/
   subcategory=all/window=D_D/``, event keyed ``D``.

``airflow backfill create --dag-id openrouter_partitioned --from-date 2025-03-01 --to-date 2025-03-10``
reads its range as partition dates: ten runs, keys 2025-03-01 .. 2025-03-10, with the same request
economy as the interval DAG (the rankings come from one cached request per calendar year; the
sensors of days already proven complete make no request).

``openrouter_weekly_share`` runs on ``PartitionedAssetTimetable`` over ``{output}/rankings_daily``
with ``RollupMapper(StartOfWeekMapper(input_format="%Y-%m-%d"), WeekWindow())``: one run per ISO
week (key ``YYYY-MM-DD (Www)``, the Monday), created only once all seven days' keys have arrived. It
computes each model's share of the week's listed tokens from the seven committed daily partitions
(read by the reader rule, exact integers) and writes ``{output}/rankings_weekly_share/week=MONDAY/``.
Every output row carries the citation of its inputs; the manifest lists every input day with its
``as_of``, citation, partition and sha256 (seed 004: keep source and checked date next to derived
claims; router rankings are a public slice, not global model usage).

This DAG and ``openrouter_daily`` write the same daily partitions and assets: enable one of them per
output location. Configuration (environment, read when the file is parsed):

* ``OPENROUTER_OUTPUT_URI``: where to write, any ObjectStoragePath URL (default ``file://<cwd>/data``).
* ``OPENROUTER_OUTPUT_CONN_ID``: the Airflow connection of that store (default none: local files).
* ``OPENROUTER_TASK_RETRIES``: retries per task (default 2, five minutes apart).
* The Airflow connection ``openrouter_default`` holds the API key (type ``openrouter``).
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from airflow.sdk import (
    DAG,
    Asset,
    CronPartitionTimetable,
    ObjectStoragePath,
    PartitionedAssetTimetable,
    RollupMapper,
    StartOfWeekMapper,
    WeekWindow,
    task,
)

from airflow_provider_openrouter.api.datasets import rankings_daily as rankings_dataset
from airflow_provider_openrouter import __version__
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.api.datasets import CAVEATS, LICENSE
from airflow_provider_openrouter.exceptions import InvalidParameterError, OpenRouterError
from airflow_provider_openrouter.lake.manifest import MANIFEST_VERSION, window_record
from airflow_provider_openrouter.operators.rankings import AppRankingsOperator, RankingsDailyOperator
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor
from airflow_provider_openrouter.windows.intervals import Window
from airflow_provider_openrouter.windows.partitions import days_for_partition

OUTPUT_URI = (os.environ.get("OPENROUTER_OUTPUT_URI") or (Path.cwd() / "data").as_uri()).rstrip("/")
OUTPUT_CONN_ID = os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None
OPENROUTER_CONN_ID = "openrouter_default"
RETRIES = int(os.environ.get("OPENROUTER_TASK_RETRIES", "2"))



class RollupInputError(OpenRouterError):
    """An input day of the weekly rollup is missing or not what the rollup expects; nothing was written."""


RANKINGS_DAILY = Asset(f"{OUTPUT_URI}/rankings_daily")
WEEKLY_SHARE = Asset(f"{OUTPUT_URI}/rankings_weekly_share")
WEEKLY_SHARE_DATASET = "rankings-weekly-share"
WEEKLY_SHARE_CAVEATS = CAVEATS + (
    " Shares are of the tokens OpenRouter lists for the week: the top 50 models of each day plus the "
    "'other' row; a model's tokens on days it was outside the top 50 are inside 'other'."
)

with DAG(
    dag_id="openrouter_partitioned",
    description="OpenRouter model and app rankings as one asset partition per final UTC day.",
    schedule=CronPartitionTimetable("0 0 * * *", timezone="UTC", run_offset=-1, key_format="%Y-%m-%d"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=2,
    max_active_tasks=4,
    default_args={"retries": RETRIES, "retry_delay": timedelta(minutes=5)},
    tags=["openrouter", "example", "partitioned"],
    doc_md=__doc__,
) as dag:
    wait_for_day = OpenRouterAsOfSensor(
        task_id="wait_for_day",
        openrouter_conn_id=OPENROUTER_CONN_ID,
        settle=timedelta(0),
        poke_interval=timedelta(minutes=10),
        max_wait=timedelta(hours=1),
        timeout=timedelta(hours=20),
        mode="reschedule",
    )
    rankings_daily = RankingsDailyOperator(
        task_id="rankings_daily",
        output_uri=OUTPUT_URI,
        output_conn_id=OUTPUT_CONN_ID,
        openrouter_conn_id=OPENROUTER_CONN_ID,
        outlets=[RANKINGS_DAILY],
    )
    app_rankings = AppRankingsOperator(
        task_id="app_rankings_popular",
        output_uri=OUTPUT_URI,
        output_conn_id=OUTPUT_CONN_ID,
        openrouter_conn_id=OPENROUTER_CONN_ID,
        sort="popular",
        max_apps=50,
    )
    wait_for_day >> rankings_daily >> app_rankings


# ---------------------------------------------------------------------- the weekly rollup
def read_day(base: ObjectStoragePath, day: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The manifest and rows of one committed rankings-daily partition (reader rule: manifest first)."""
    directory = storage.join(base, rankings_dataset.partition_key(day))
    part = storage.read_partition(directory)
    if part is None:
        raise RollupInputError(
            f"{directory} has no committed partition: the weekly rollup needs all seven days. Nothing was written."
        )
    if part.manifest.get("format", "jsonl") == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(part.data))
        rows = [
            {"date": str(r["date"]), "model_permaslug": r["model_permaslug"], "total_tokens": int(r["total_tokens"])}
            for r in table.to_pylist()
        ]
    else:
        rows = [json.loads(line) for line in part.data.decode("utf-8").split("\n") if line]
    if any(row.get("date") != day.isoformat() for row in rows):
        raise RollupInputError(f"{directory} holds rows of another day. Nothing was written.")
    return part.manifest, rows


def weekly_shares(week: Window, days: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]) -> list[dict[str, Any]]:
    """Each model's share of the week's listed tokens (exact integer sums; ``other`` last)."""
    tokens: dict[str, int] = {}
    listed: dict[str, int] = {}
    for _, rows in days:
        for row in rows:
            slug, count = row["model_permaslug"], row["total_tokens"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise RollupInputError(f"total_tokens {count!r} of {slug!r} is not a count.")
            tokens[slug] = tokens.get(slug, 0) + count
            listed[slug] = listed.get(slug, 0) + 1
    total = sum(tokens.values())
    citation = week_citation(week, [manifest for manifest, _ in days])
    order = sorted(tokens, key=lambda slug: (slug == "other", -tokens[slug], slug))
    return [
        {
            "week_start": week.start.isoformat(),
            "week_end": week.end.isoformat(),
            "model_permaslug": slug,
            "total_tokens": tokens[slug],
            "share": tokens[slug] / total if total else 0.0,
            "days_listed": listed[slug],
            "citation": citation,
        }
        for slug in order
    ]


def week_citation(week: Window, manifests: Sequence[Mapping[str, Any]]) -> str:
    """One line naming every distinct citation (source and as_of) of the week's input days."""
    seen: list[str] = []
    for manifest in manifests:
        line = str(manifest.get("citation", ""))
        if line and line not in seen:
            seen.append(line)
    return f"Weekly rollup of OpenRouter rankings-daily {week}: " + " ".join(seen)


def land_weekly_share(base: ObjectStoragePath, partition_key: str, partition_date: datetime | None,
                      triggered_by: Sequence[str] = ()) -> dict[str, Any]:
    """Read the week's seven daily partitions, write the weekly share partition, return a summary."""
    week = days_for_partition(partition_key, partition_date)
    if week is None or week.days != 7:
        raise InvalidParameterError(f"partition {partition_key!r} is not a whole ISO week of the datasets ({week}).")
    unexpected = sorted(set(triggered_by) - {d.isoformat() for d in week.iter_days()})
    if unexpected:
        raise RollupInputError(f"The run was triggered by days outside week {week}: {unexpected}.")
    days = [read_day(base, day) for day in week.iter_days()]
    records = weekly_shares(week, days)
    key = f"rankings_weekly_share/week={week.start.isoformat()}"
    data = storage.jsonl_bytes(records)
    staged = storage.stage_partition(storage.join(base, key), key, data, "jsonl", len(records))
    inputs = [
        {
            "day": manifest["window"]["start"] if isinstance(manifest.get("window"), Mapping) else None,
            "partition": manifest.get("partition"),
            "sha256": manifest["sha256"],
            "row_count": manifest["row_count"],
            "as_of": manifest["meta"].get("as_of"),
            "citation": manifest.get("citation"),
        }
        for manifest, _ in days
    ]
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "dataset": WEEKLY_SHARE_DATASET,
        "partition": key,
        "partition_key": partition_key,
        "window": window_record(week),
        "meta": {"derived_from": "rankings-daily", "as_of": max(str(i["as_of"]) for i in inputs)},
        "inputs": inputs,
        "row_count": len(records),
        "format": "jsonl",
        "data_file": staged.data_file,
        "sha256": staged.sha256,
        "size": staged.size,
        "previous_sha256": staged.previous_sha256,
        "computed_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "provider_version": __version__,
        "citation": records[0]["citation"] if records else week_citation(week, [m for m, _ in days]),
        "license": LICENSE,
        "caveats": WEEKLY_SHARE_CAVEATS,
    }
    try:
        storage.commit_partition(staged, manifest)
    except BaseException:
        storage.discard_staged(staged)
        raise
    return {"partition_key": partition_key, "week": window_record(week), "partition": key, "status": staged.status,
            "row_count": len(records), "inputs": [i["day"] for i in inputs], "as_of": [i["as_of"] for i in inputs]}


with DAG(
    dag_id="openrouter_weekly_share",
    description="Each model's share of the week's OpenRouter tokens, once all seven daily partitions landed.",
    schedule=PartitionedAssetTimetable(
        assets=RANKINGS_DAILY,
        default_partition_mapper=RollupMapper(
            upstream_mapper=StartOfWeekMapper(input_format="%Y-%m-%d"),
            window=WeekWindow(),
        ),
    ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": RETRIES, "retry_delay": timedelta(minutes=5)},
    tags=["openrouter", "example", "partitioned"],
    doc_md=__doc__,
) as weekly_dag:

    @task(outlets=[WEEKLY_SHARE])
    def weekly_share(**context: Any) -> dict[str, Any]:
        """Each model's share of the week's tokens -> ``{output}/rankings_weekly_share/week=MONDAY/``."""
        keys = sorted({
            event.partition_key
            for event in context["triggering_asset_events"][RANKINGS_DAILY]
            if getattr(event, "partition_key", None)
        })
        base = ObjectStoragePath(OUTPUT_URI, conn_id=OUTPUT_CONN_ID)
        summary = land_weekly_share(base, context["partition_key"], context.get("partition_date"), keys)
        context["outlet_events"][WEEKLY_SHARE].extra = {
            "dataset": WEEKLY_SHARE_DATASET, "week": summary["week"], "inputs": summary["inputs"],
            "as_of": summary["as_of"], "row_count": summary["row_count"],
        }
        return summary

    weekly_share()
