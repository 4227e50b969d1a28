"""Helpers of the storage tests: commit a partition the way the operators do (stage, then commit)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.api.datasets import rankings_daily
from airflow_provider_openrouter.lake import manifest, storage
from airflow_provider_openrouter.windows.intervals import Window

META = {
    "as_of": "2026-03-01T02:00:00Z",
    "start_date": "2025-07-04",
    "end_date": "2025-07-04",
    "version": "v1",
}
DAY = date(2025, 7, 4)


def records(version: int, n: int = 3, day: date = DAY) -> list[dict]:
    """Rows of one day; ``version`` changes the counts, as a restatement does."""
    return [
        {
            "date": day.isoformat(),
            "model_permaslug": f"vendor/model-{i}",
            "total_tokens": (n - i) * 10**15 + version,
        }
        for i in range(n)
    ]


def manifest_for(staged: storage.StagedPartition, day: date = DAY) -> dict:
    return manifest.build_manifest(
        dataset=manifest.RANKINGS_DAILY,
        partition=staged.key,
        window=Window(day, day),
        run_window=Window(day, day),
        request_path="/datasets/rankings-daily",
        request_params=[{"start_date": day.isoformat(), "end_date": day.isoformat()}],
        meta=META,
        row_count=staged.row_count,
        data_format=staged.data_format,
        data_file=staged.data_file,
        sha256=staged.sha256,
        size=staged.size,
        fetched_at=datetime(2026, 3, 1, 3, tzinfo=timezone.utc),
        previous_sha256=staged.previous_sha256,
        schema=staged.schema,
    )


def stage(
    directory: ObjectStoragePath, version: int, data_format: str = "jsonl", day: date = DAY
) -> storage.StagedPartition:
    data, schema = storage.serialise(records(version, day=day), rankings_daily.COLUMNS, data_format)
    return storage.stage_partition(
        directory, rankings_daily.partition_key(day), data, data_format, 3, schema
    )


def write(
    directory: ObjectStoragePath, version: int, data_format: str = "jsonl"
) -> storage.StagedPartition:
    staged = stage(directory, version, data_format)
    storage.commit_partition(staged, manifest_for(staged))
    return staged


def expected_bytes(version: int, data_format: str = "jsonl", day: date = DAY) -> bytes:
    return storage.serialise(records(version, day=day), rankings_daily.COLUMNS, data_format)[0]


def commit_days(
    base: ObjectStoragePath, version: int, days: list[date]
) -> list[storage.StagedPartition]:
    """Write several day partitions as the operators do: stage every one, then commit each in turn."""
    staged = [
        stage(storage.join(base, rankings_daily.partition_key(day)), version, day=day)
        for day in days
    ]
    for partition, day in zip(staged, days):
        storage.commit_partition(partition, manifest_for(partition, day))
    return staged
