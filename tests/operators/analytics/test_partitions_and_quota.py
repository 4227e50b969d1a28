"""What AnalyticsQueryOperator gets from the dataset operators' base: partitioned runs
(CronPartitionTimetable, driven through dag.test) and deferral when the API's quota is spent."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.partitions.conftest import PartitionRun, midnight

from .conftest import META, QUERY, AnalyticsEnv
from .test_runs import BY_MODEL, body, jsonl, logs, reference

DAILY_QUOTA = "Daily request limit exceeded: 500 requests per day"


def test_a_partitioned_run_lands_its_day_and_keys_the_asset_event(
    env: AnalyticsEnv, run_partition: Callable[..., PartitionRun]
) -> None:
    env.dag(BY_MODEL, schedule="partition")
    run = run_partition(env.dag_id, "2025-07-04", midnight("2025-07-04"))
    assert run.state == "success", run.task_states
    expected_body = body(["total_tokens", "cost"], "2025-07-04", dimensions=["model"])
    assert env.query_bodies() == [expected_body]  # the partition's day, no data interval needed
    assert sorted(env.files()) == [
        "analytics/by_model/date=2025-07-04/_manifest.json",
        "analytics/by_model/date=2025-07-04/data.jsonl",
    ]
    committed = env.partition("by_model", "2025-07-04")
    assert committed.data == jsonl(reference(expected_body))
    assert committed.manifest["run_window"] == {
        "start": "2025-07-04",
        "end": "2025-07-04",
        "days": 1,
        "clamped_from": None,
    }
    summary = run.xcoms["by_model"]
    assert (
        summary["partition_keys"] == ["2025-07-04"]
        and summary["time_range"] == expected_body["time_range"]
    )
    assert run.keys(f"{env.uri}/analytics/by_model") == ["2025-07-04"]


def test_a_partition_key_the_timetable_does_not_write_is_refused(
    env: AnalyticsEnv, run_partition: Callable[..., PartitionRun]
) -> None:
    env.dag(BY_MODEL, schedule="partition")
    run = run_partition(env.dag_id, "20250704", midnight("2025-07-04"))
    assert run.task_states == {"by_model": "failed"}
    assert env.query_bodies() == [] and env.files() == {}


def test_a_spent_daily_quota_defers_until_the_api_says_then_lands_the_run(
    env: AnalyticsEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    env.emulator.inject("429", times=1, path=QUERY, retry_after=1, message=DAILY_QUOTA)
    env.dag(BY_MODEL)
    started = time.monotonic()
    result = env.run("2025-07-05")
    waited = time.monotonic() - started
    assert result.task_states == {"by_model": "success"}
    calls = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in env.emulator.requests]
    # refused once, then the task deferred and started over: no retry loop against the quota
    assert calls == [("meta", 200), ("query", 429), ("meta", 200), ("query", 200)], calls
    assert waited >= 1.0  # not before the advertised retry time
    expected_body = body(["total_tokens", "cost"], "2025-07-04", dimensions=["model"])
    committed = env.partition("by_model", "2025-07-04")
    assert (
        committed.data == jsonl(reference(expected_body))
        and committed.manifest["request"]["requests"] == 1
    )
    assert sorted(env.files()) == [
        "analytics/by_model/date=2025-07-04/_manifest.json",
        "analytics/by_model/date=2025-07-04/data.jsonl",
    ]
    assert result.xcom("by_model")["requests"] == 2  # the try after the wait: 1 meta + 1 query
    text = logs(capfd)
    assert "daily request quota is exhausted" in text and "Deferring until" in text


def test_without_deferral_a_spent_quota_fails_and_writes_nothing(
    env: AnalyticsEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    env.emulator.inject("429", times=1, path=QUERY, retry_after=1, message=DAILY_QUOTA)
    env.dag(
        BY_MODEL.replace(
            "openrouter_conn_id=CONN,", "openrouter_conn_id=CONN, defer_on_rate_limit=False,"
        )
    )
    result = env.run("2025-07-05")
    assert result.task_states == {"by_model": "failed"}
    assert (
        env.files() == {}
        and env.emulator.request_count(META) == 1
        and env.emulator.request_count(QUERY) == 1
    )
    text = logs(capfd)
    assert "daily request quota is exhausted" in text and "Deferring until" not in text
