"""AnalyticsQueryOperator in real DAG runs (dag.test, metadata DB) against the emulator over loopback."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_openrouter.testing import analytics_engine as engine

from .conftest import KEY, META, MGMT, NOW, QUERY, AnalyticsEnv, day, rows

BY_MODEL = (
    'AnalyticsQueryOperator(task_id="by_model", output_uri=LAKE, openrouter_conn_id=CONN,\n'
    '                       metrics=["total_tokens", "cost"], dimensions=["model"])'
)


def body(metrics: list[str], start: str, end: str | None = None, **more: Any) -> dict[str, Any]:
    """The JSON body the operator should send for [start, end) (end: the next day)."""
    end = end or (day(start) + timedelta(days=1)).date().isoformat()
    out: dict[str, Any] = {
        "metrics": metrics,
        **{k: v for k, v in more.items() if k in ("dimensions", "filters")},
    }
    out["granularity"] = more.get("granularity", "day")
    out["time_range"] = {"start": f"{start}T00:00:00Z", "end": f"{end}T00:00:00Z"}
    out.update({k: v for k, v in more.items() if k in ("limit", "group_limit", "order_by")})
    return out


def reference(query: dict[str, Any]) -> list[dict[str, Any]]:
    """The emulator's complete answer to ``query`` (no limit), computed in process."""
    answer = engine.run_query(json.dumps({**query, "limit": engine.MAX_LIMIT}).encode(), NOW)[
        "data"
    ]
    assert not answer["metadata"]["truncated"]
    return answer["data"]


def jsonl(records: list[dict[str, Any]]) -> bytes:
    """What the lake must hold, by the emulator's own serialiser (decimals as plain number literals)."""
    return b"".join(engine.dumps(r) + b"\n" for r in records)


def canonical(records: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=repr) for r in records)


def logs(capfd: pytest.CaptureFixture[str]) -> str:
    out = capfd.readouterr()
    return out.out + out.err


def test_one_day_lands_exact_rows_manifest_asset_and_summary(
    env: AnalyticsEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(BY_MODEL)
    result = env.run("2025-07-05")
    assert result.task_states == {"by_model": "success"}
    expected_body = body(["total_tokens", "cost"], "2025-07-04", dimensions=["model"])
    assert env.query_bodies() == [expected_body] and env.emulator.request_count(META) == 1
    assert sorted(env.files()) == [
        "analytics/by_model/date=2025-07-04/_manifest.json",
        "analytics/by_model/date=2025-07-04/data.jsonl",
    ]

    committed = env.partition("by_model", "2025-07-04")
    expected = reference(expected_body)
    assert (
        len(expected) == 8
        and committed.data == jsonl(expected)
        and rows(committed.data) == expected
    )
    costs = [r["cost"] for r in rows(committed.data)]
    assert b'"cost":"' not in committed.data and all(isinstance(c, Decimal) for c in costs)
    assert any(Decimal(repr(float(c))) != c for c in costs)  # a binary float would have lost digits
    events = list(engine.events_between(day("2025-07-04"), day("2025-07-05")))
    assert sum(costs) == sum(e.cost for e in events)  # exact to the last of 15 decimals
    assert sum(r["total_tokens"] for r in rows(committed.data)) == sum(
        e.prompt_tokens + e.completion_tokens for e in events
    )

    m = committed.manifest
    assert (m["dataset"], m["partition"], m["query_name"]) == (
        "analytics",
        "analytics/by_model/date=2025-07-04",
        "by_model",
    )
    assert (
        m["window"]
        == m["run_window"]
        == {"start": "2025-07-04", "end": "2025-07-04", "days": 1, "clamped_from": None}
    )
    assert m["time_range"] == expected_body["time_range"]
    assert m["request"] == {
        "path": "/analytics/query",
        "body": expected_body,
        "slices": [expected_body["time_range"]],
        "requests": 1,
    }
    assert (
        m["meta"]["truncated"] is False
        and m["meta"]["row_count"] == 8
        and m["meta"]["warnings"] == []
    )
    assert (m["row_count"], m["format"], m["data_file"], m["previous_sha256"]) == (
        8,
        "jsonl",
        "data.jsonl",
        None,
    )
    assert (m["citation"], m["license"], m["caveats"]) == (
        None,
        None,
        None,
    )  # the organisation's own usage
    assert "management key" in m["source"] and "decimal" in m["numbers"]
    assert list(m) == [
        "manifest_version",
        "dataset",
        "partition",
        "window",
        "run_window",
        "request",
        "meta",
        "row_count",
        "format",
        "data_file",
        "sha256",
        "size",
        "previous_sha256",
        "fetched_at",
        "provider_version",
        "citation",
        "license",
        "caveats",
        "query_name",
        "time_range",
        "source",
        "numbers",
    ]  # the lake's one schema (lake.manifest.build_manifest), then the query's own keys

    summary = result.xcom("by_model")
    assert summary["time_range"] == expected_body["time_range"] and summary["window"]["days"] == 1
    assert (
        summary["requests"],
        summary["row_count"],
        summary["partitions"]["created"],
        summary["partitions_written"],
    ) == (2, 8, 1, 1)
    assert len(json.dumps(summary)) < 1000
    assert result.asset_events == [
        {
            "uri": f"{env.uri}/analytics/by_model",
            "task_id": "by_model",
            "extra": {
                "dataset": "analytics",
                "query_name": "by_model",
                "window": {"start": "2025-07-04", "end": "2025-07-04"},
                "time_range": expected_body["time_range"],
                "row_count": 8,
            },
        }
    ]
    text = logs(capfd)
    assert (
        "Querying OpenRouter analytics metrics=total_tokens,cost dimensions=model granularity=day for "
        "2025-07-04T00:00:00Z..2025-07-05T00:00:00Z (1 UTC day(s)"
    ) in text
    assert (
        f"Wrote 1 of 1 partition(s) under {env.uri}/analytics/by_model (created 1); 8 row(s); "
        "2 request(s) to OpenRouter (1 meta + 1 query)."
    ) in text
    for secret in (KEY, MGMT):
        assert secret not in text and secret not in json.dumps(summary)
        assert all(secret.encode() not in data for data in env.files().values())


TWO_TASKS = (
    BY_MODEL
    + """
AnalyticsQueryOperator(task_id="one_model", output_uri=LAKE, openrouter_conn_id=CONN, metrics=["request_count"],
                       granularity="hour", filters=[{"field": "model", "operator": "eq", "value": "{{ params.model }}"}])
"""
)


def test_week_interval_is_one_exact_day_query_each_and_a_rerun_is_byte_identical(
    env: AnalyticsEnv,
) -> None:
    env.dag(TWO_TASKS, schedule="weekly", params={"model": "openai/gpt-4o-mini"})
    result = env.run("2025-07-08")  # [2025-07-01, 2025-07-08)
    assert result.state == "success", result.task_states
    days = [(datetime(2025, 7, 1) + timedelta(days=i)).date().isoformat() for i in range(7)]
    filters = [{"field": "model", "operator": "eq", "value": "openai/gpt-4o-mini"}]  # rendered
    by_model = [body(["total_tokens", "cost"], d, dimensions=["model"]) for d in days]
    one_model = [body(["request_count"], d, granularity="hour", filters=filters) for d in days]
    assert canonical(env.query_bodies()) == canonical(by_model + one_model)
    assert env.emulator.request_count(META) == 2  # one per task run
    for d, b_model, b_one in zip(days, by_model, one_model):
        committed = env.partition("by_model", d)
        assert committed.data == jsonl(reference(b_model))
        assert committed.manifest["run_window"] == {
            "start": "2025-07-01",
            "end": "2025-07-07",
            "days": 7,
            "clamped_from": None,
        }
        hourly = env.partition("one_model", d)
        assert hourly.manifest["request"]["body"] == b_one and hourly.data == jsonl(
            reference(b_one)
        )
        assert {r["date"][:10] for r in rows(hourly.data)} == {d} and len(rows(hourly.data)) > 5
    assert len(env.files()) == 28
    summary = result.xcom("by_model")
    assert summary["time_range"] == {"start": "2025-07-01T00:00:00Z", "end": "2025-07-08T00:00:00Z"}
    assert (summary["requests"], summary["partition_count"], summary["partitions"]["created"]) == (
        8,
        7,
        7,
    )

    before_files, before_stats = env.files(), env.stats()
    again = env.run("2025-07-08")
    assert again.state == "success"
    assert env.files() == before_files and env.stats() == before_stats  # not even rewritten
    assert (
        again.xcom("by_model")["partitions"]["unchanged"] == 7
        and again.xcom("by_model")["partitions_written"] == 0
    )


def test_numbers_restated_upstream_are_rewritten_with_previous_sha256(
    env: AnalyticsEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(BY_MODEL)
    env.emulator.set_now(
        datetime(2025, 7, 4, 12, tzinfo=timezone.utc)
    )  # OpenRouter had half the day's events
    env.run("2025-07-05")
    first = env.partition("by_model", "2025-07-04")
    env.emulator.set_now(NOW)
    result = env.run("2025-07-05")
    second = env.partition("by_model", "2025-07-04")
    assert second.sha256 != first.sha256 and second.manifest["previous_sha256"] == first.sha256
    assert second.data == jsonl(
        reference(body(["total_tokens", "cost"], "2025-07-04", dimensions=["model"]))
    )
    assert result.xcom("by_model")["restated"] == ["analytics/by_model/date=2025-07-04"]
    assert (
        f"Restated upstream: analytics/by_model/date=2025-07-04 changed (sha256 {first.sha256} -> {second.sha256})"
        in logs(capfd)
    )
    assert sorted(env.files()) == [
        "analytics/by_model/date=2025-07-04/_manifest.json",
        "analytics/by_model/date=2025-07-04/data.jsonl",
    ]


def test_zero_length_interval_of_plain_daily_is_the_day_ending_at_the_logical_date(
    env: AnalyticsEnv,
) -> None:
    env.dag(BY_MODEL, schedule="trigger")
    result = env.run("2025-07-05")
    assert result.state == "success"
    assert env.query_bodies() == [
        body(["total_tokens", "cost"], "2025-07-04", dimensions=["model"])
    ]
    assert result.xcom("by_model")["time_range"] == {
        "start": "2025-07-04T00:00:00Z",
        "end": "2025-07-05T00:00:00Z",
    }


SPLIT = """
AnalyticsQueryOperator(task_id="hourly", output_uri=LAKE, openrouter_conn_id=CONN, metrics=["request_count", "cost"],
                       dimensions=["model", "provider"], granularity="hour", limit=20)
AnalyticsQueryOperator(task_id="daily", output_uri=LAKE, openrouter_conn_id=CONN, metrics=["request_count", "cost"],
                       dimensions=["model", "provider"], limit=10)
"""


def test_truncated_answers_are_split_until_complete_and_merged_exactly(env: AnalyticsEnv) -> None:
    env.dag(SPLIT)
    result = env.run("2025-07-05")
    assert result.state == "success", result.task_states
    for task, granularity, limit in (("hourly", "hour", 20), ("daily", "day", 10)):
        whole = body(
            ["request_count", "cost"],
            "2025-07-04",
            dimensions=["model", "provider"],
            granularity=granularity,
        )
        expected = reference(whole)
        assert len(expected) > limit  # the one-request answer is truncated
        committed = env.partition(task, "2025-07-04")
        got = rows(committed.data)
        assert canonical(got) == canonical(
            expected
        )  # every row, numbers summed exactly across slices
        assert (
            committed.manifest["row_count"] == len(expected)
            and committed.manifest["meta"]["truncated"] is False
        )
        sent = [b for b in env.query_bodies() if b["limit"] == limit]
        assert sent[0]["time_range"] == whole["time_range"]  # asked whole first, then split
        slices = committed.manifest["request"]["slices"]
        assert (
            len(slices) > 1
            and slices[0]["start"] == whole["time_range"]["start"]
            and slices[-1]["end"] == whole["time_range"]["end"]
        )
        assert committed.manifest["request"]["requests"] == len(sent) > len(slices)
    daily = rows(env.partition("daily", "2025-07-04").data)
    assert all(
        r["date"] == "2025-07-04T00:00:00Z" for r in daily
    )  # one row per group for the day, not per slice


def test_query_timeouts_are_retried_with_smaller_slices(env: AnalyticsEnv) -> None:
    env.emulator.set_analytics_timeout_span(timedelta(hours=6))
    env.dag(BY_MODEL)
    result = env.run("2025-07-05")
    assert result.state == "success", result.task_states
    committed = env.partition("by_model", "2025-07-04")
    whole = body(["total_tokens", "cost"], "2025-07-04", dimensions=["model"])
    assert canonical(rows(committed.data)) == canonical(reference(whole))
    assert [s["start"][11:13] for s in committed.manifest["request"]["slices"]] == [
        "00",
        "06",
        "12",
        "18",
    ]
    assert (
        env.emulator.request_count(QUERY, status=408) == 2
        and committed.manifest["request"]["requests"] == 6
    )
    assert result.xcom("by_model")["requests"] == 7


def test_a_plain_api_key_fails_clearly_and_writes_nothing(
    env: AnalyticsEnv, openrouter_conn: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    plain = openrouter_conn(env.emulator, conn_id="openrouter_plain")
    env.dag(BY_MODEL, conn=plain)
    result = env.run("2025-07-05")
    assert result.task_states == {"by_model": "failed"}
    assert not env.lake.exists()
    assert (
        env.emulator.request_count(META, status=403) == 1 and env.emulator.request_count(QUERY) == 0
    )
    text = logs(capfd)
    assert (
        "OpenRouter's analytics API needs a management key" in text
        and "'openrouter_plain' is not one (HTTP 403)" in text
    )
    assert "management_api_key" in text and KEY not in text


def test_a_day_that_cannot_be_completed_leaves_no_day_written(
    env: AnalyticsEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(
        'AnalyticsQueryOperator(task_id="strict", output_uri=LAKE, openrouter_conn_id=CONN, metrics=["cost"],\n'
        '                       dimensions=["model", "provider"], limit=16, min_slice=timedelta(days=1))',
        schedule="weekly",
    )
    result = env.run(
        "2025-07-08"
    )  # 2025-07-01 has 16 rows (complete), 2025-07-02 has 17 (truncated at 16)
    assert result.task_states == {"strict": "failed"}
    assert [b["time_range"]["start"][:10] for b in env.query_bodies()] == [
        "2025-07-01",
        "2025-07-02",
    ]
    assert env.files() == {}  # the staged first day was discarded, nothing committed
    assert "2025-07-02T00:00:00Z..2025-07-03T00:00:00Z was truncated" in logs(capfd)


def test_an_answer_with_rows_outside_the_day_asked_is_refused(
    env: AnalyticsEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    row = {
        "date": "2025-07-05T00:00:00Z",
        "model": "OpenAI: GPT-4o-mini",
        "total_tokens": 1,
        "cost": 1,
    }
    env.emulator.inject(
        "payload",
        path=QUERY,
        body={
            "data": {
                "data": [row],
                "metadata": {"query_time_ms": 1, "row_count": 1, "truncated": False},
            }
        },
    )
    env.dag(BY_MODEL)
    result = env.run("2025-07-05")
    assert result.task_states == {"by_model": "failed"} and env.files() == {}
    assert "row 0 has date='2025-07-05T00:00:00Z', outside the time range asked for" in logs(capfd)
