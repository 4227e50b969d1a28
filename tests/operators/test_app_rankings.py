"""AppRankingsOperator in real DAG runs against the emulator: one partition per run window."""

from __future__ import annotations

import json
from datetime import date

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import dataset

from .conftest import Env

pytestmark = pytest.mark.integration

PREFIX = (
    "app_rankings/sort={sort}/category={category}/subcategory={subcategory}/window={start}_{end}"
)


def committed(env: Env, **parts: str) -> storage.CommittedPartition:
    found = storage.read_partition(ObjectStoragePath(f"{env.uri}/" + PREFIX.format(**parts)))
    assert found is not None
    return found


def expected_jsonl(start: date, end: date, **query: object) -> bytes:
    rows = dataset.app_rankings_rows(start, end, **query)
    return b"".join(
        json.dumps(
            {**r, "total_tokens": int(r["total_tokens"])}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        + b"\n"
        for r in rows
    )


def test_weekly_window_lands_one_partition_with_exact_rows(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, max_apps=150)',
        schedule="weekly",
    )
    result = env.run("2025-07-08")
    assert result.task_states == {"apps": "success"}
    part = committed(
        env, sort="popular", category="all", subcategory="all", start="2025-07-01", end="2025-07-07"
    )
    everything = expected_jsonl(date(2025, 7, 1), date(2025, 7, 7), limit=1000)
    assert (
        part.data == b"".join(everything.splitlines(keepends=True)[:150])
        and part.manifest["row_count"] == 150
    )
    m = part.manifest
    assert m["dataset"] == "app-rankings" and m["row_count"] == len(part.data.splitlines())
    assert m["citation"] == "Source: OpenRouter (openrouter.ai/apps), as of 2026-03-01T02:00:00Z."
    assert m["window"] == {
        "start": "2025-07-01",
        "end": "2025-07-07",
        "days": 7,
        "clamped_from": None,
    }
    sent = [r["params"] for r in env.emulator.requests]
    assert [
        {k: str(v) for k, v in p.items()} for p in m["request"]["params"]
    ] == sent  # every page sent
    assert [(p["offset"], p["limit"]) for p in sent] == [("0", "100"), ("100", "50")]
    assert m["app_query"] == {
        "sort": "popular",
        "category": None,
        "subcategory": None,
        "max_apps": 150,
    }
    summary = result.xcom("apps")
    assert summary["requests"] == len(sent) and summary["row_count"] == m["row_count"]
    assert (
        result.asset_events[0]["uri"]
        == f"{env.uri}/app_rankings/sort=popular/category=all/subcategory=all"
    )
    assert result.asset_events[0]["extra"]["window"] == {"start": "2025-07-01", "end": "2025-07-07"}
    logs = capfd.readouterr()
    assert (
        "Source: OpenRouter (openrouter.ai/apps), as of 2026-03-01T02:00:00Z."
        in logs.out + logs.err
    )


def test_app_names_with_quotes_commas_emoji_and_newlines_survive(env: Env) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, max_apps=200)'
    )
    assert env.run("2025-07-05").state == "success"
    part = committed(
        env, sort="popular", category="all", subcategory="all", start="2025-07-04", end="2025-07-04"
    )
    rows = [json.loads(line) for line in part.data.split(b"\n")[:-1]]
    names = [
        r["app_name"]
        for r in dataset.app_rankings_rows(date(2025, 7, 4), date(2025, 7, 4), limit=200)
    ]
    assert [r["app_name"] for r in rows] == names
    assert (
        len(rows) == 172 and part.manifest["capped"] is False
    )  # fewer apps than asked: paging stopped early
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))


def test_rerun_identical_then_restatement_recorded(env: Env) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, sort="trending", '
        'category="coding", subcategory="cli-agent")',
        schedule="weekly",
    )
    assert env.run("2025-07-08").state == "success"
    parts = dict(
        sort="trending",
        category="coding",
        subcategory="cli-agent",
        start="2025-07-01",
        end="2025-07-07",
    )
    first = committed(env, **parts)
    inodes = env.inodes()
    again = env.run("2025-07-08")
    assert env.inodes() == inodes and again.xcom("apps")["partitions"]["unchanged"] == 1
    env.emulator.restate("2025-07-03")
    third = env.run("2025-07-08")
    assert third.xcom("apps")["restated"] == [PREFIX.format(**parts)]
    assert committed(env, **parts).manifest["previous_sha256"] == first.sha256


def test_templated_category_is_rendered_and_validated_at_run_time(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, category="{{ params.cat }}")',
        params={"cat": "creative"},
    )
    result = env.run("2025-07-05")
    assert result.state == "success"
    committed(
        env,
        sort="popular",
        category="creative",
        subcategory="all",
        start="2025-07-04",
        end="2025-07-04",
    )
    assert result.asset_events[0]["uri"] == f"{env.uri}/app_rankings"
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, category="{{ params.cat }}")',
        params={"cat": "cooking"},
        dag_id=env.dag_id + "_bad",
    )
    bad = env.run("2025-07-05", dag_id=env.dag_id + "_bad")
    assert bad.task_states == {"apps": "failed"}
    logs = capfd.readouterr()
    assert "category='cooking' is not an OpenRouter app category" in logs.out + logs.err


def test_floor_clamps_the_window_in_the_path_and_the_manifest(env: Env) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN)',
        schedule="weekly",
    )
    assert env.run("2025-01-03").state == "success"
    part = committed(
        env, sort="popular", category="all", subcategory="all", start="2025-01-01", end="2025-01-02"
    )
    assert part.manifest["window"]["clamped_from"] == "2024-12-27"


def test_window_over_366_days_is_refused_without_a_request(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN)',
        schedule="400d",
    )
    result = env.run("2026-03-01")
    assert result.task_states == {"apps": "failed"}
    assert env.emulator.requests == [] and not env.lake.exists()
    logs = capfd.readouterr()
    assert "spans 400 days; app rankings rank apps over the whole window" in logs.out + logs.err


def test_incomplete_window_fails_before_writing(env: Env) -> None:
    from datetime import datetime, timezone

    env.emulator.set_now(datetime(2025, 7, 6, 2, tzinfo=timezone.utc))
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN)',
        schedule="weekly",
    )
    assert env.run("2025-07-08").task_states == {"apps": "failed"}
    assert not env.lake.exists()
