"""Lineage, metrics and extra links of the dataset operators in real DAG runs.

Each run is a real ``dag.test`` in a fresh process with the real OpenLineage provider writing every
event to a file and Airflow's ``Stats`` sending StatsD datagrams to a UDP socket the test listens
on (see :mod:`tests.observing`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.observing import Observer, observe, stored_xcom

from .conftest import Env

pytestmark = pytest.mark.integration


@pytest.fixture
def observer(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Observer]:
    observing = observe(env.dag_id, tmp_path, monkeypatch)
    yield observing
    observing.statsd.close()


def lake_sizes(env: Env, prefix: str) -> tuple[int, int]:
    """(data files, bytes) of the committed data files under ``prefix``."""
    files = {
        k: v
        for k, v in env.files().items()
        if k.startswith(prefix) and k.rsplit("/", 1)[-1].startswith("data.")
    }
    return len(files), sum(len(v) for v in files.values())


def test_rankings_daily_run_emits_lineage_metrics_and_links(env: Env, observer: Observer) -> None:
    env.dag(
        'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)',
        schedule="weekly",
    )
    observer.run("2025-07-08")
    event = observer.complete("rankings")

    [source] = event["inputs"]
    assert (source["namespace"], source["name"]) == (
        "https://openrouter.ai",
        "/api/v1/datasets/rankings-daily",
    )
    request = source["inputFacets"]["openrouter_request"]
    assert request["window"] == {"start": "2025-07-01", "end": "2025-07-07", "days": 7}
    assert request["parameters"] == [{"start_date": "2025-07-01", "end_date": "2025-07-07"}]
    assert request["asOf"] == "2026-03-01T02:00:00Z" and request["requests"] == 1
    assert request["baseUrl"] == env.emulator.base_url
    assert (
        "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
        in source["facets"]["documentation"]["description"]
    )
    assert source["facets"]["openrouter_source"]["license"].startswith("CC BY 4.0")

    [lake] = event["outputs"]
    assert (lake["namespace"], lake["name"]) == ("file", f"{env.lake}/rankings_daily")
    files, size = lake_sizes(env, "rankings_daily/")
    rows = sum(
        1 for k, v in env.files().items() if k.endswith("data.jsonl") for _ in v.splitlines()
    )
    assert files == 7
    assert lake["outputFacets"]["outputStatistics"] == {
        **{k: v for k, v in lake["outputFacets"]["outputStatistics"].items() if k.startswith("_")},
        "rowCount": rows,
        "size": size,
        "fileCount": 7,
    }
    assert [(f["name"], f["type"]) for f in lake["facets"]["schema"]["fields"]] == [
        ("date", "date"),
        ("model_permaslug", "string"),
        ("total_tokens", "integer"),
    ]
    doc = lake["facets"]["documentation"]["description"]
    assert "as of 2026-03-01T02:00:00Z" in doc and "CC BY 4.0" in doc
    assert "lifecycleStateChange" not in lake["facets"]
    partitions = lake["outputFacets"]["openrouter_partitions"]["partitions"]
    assert [p["key"] for p in partitions] == [
        f"rankings_daily/date=2025-07-0{d}" for d in range(1, 8)
    ]
    assert {p["status"] for p in partitions} == {"created"}

    # metrics: the one request, its class and endpoint; what landed; the as_of lag
    assert (
        observer.total("api.requests", endpoint="datasets.rankings-daily", status_class="2xx") == 1
    )
    assert observer.total("api.requests") == len(env.emulator.requests) == 1
    assert observer.total("lake.rows_written", dataset="rankings-daily") == rows
    assert observer.total("lake.bytes_written", dataset="rankings-daily") == size
    assert (
        observer.total("lake.partitions_written", dataset="rankings-daily", status="created") == 7
    )
    assert observer.ours("lake.partitions_rewritten") == []
    [lag] = observer.ours("as_of.lag", dataset="rankings-daily")
    # the newest complete day, 2026-02-28, ended 2026-03-01 00:00 UTC
    newest_end = datetime(2026, 3, 1, tzinfo=timezone.utc)
    expected = (datetime.now(timezone.utc) - newest_end).total_seconds()
    assert lag.kind == "g" and 0 <= expected - lag.value < 600

    # extra links, as the task runner resolved them for the UI
    assert (
        stored_xcom(env.dag_id, "rankings", "_link_OpenRouterDatasetPageLink")
        == "https://openrouter.ai/rankings"
    )
    assert (
        stored_xcom(env.dag_id, "rankings", "_link_OpenRouterPartitionLink")
        == f"{env.uri}/rankings_daily/date=2025-07-07/"
    )


def test_a_restated_day_is_an_overwrite_in_lineage_and_metrics(
    env: Env, observer: Observer
) -> None:
    env.dag(
        'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)',
        schedule="weekly",
    )
    observer.run("2025-07-08")
    before = json.loads(env.files()["rankings_daily/date=2025-07-03/_manifest.json"])["sha256"]
    env.emulator.restate("2025-07-03")
    observer.run("2025-07-08")
    [lake] = observer.complete("rankings")["outputs"]
    assert lake["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "OVERWRITE"
    partitions = {p["key"]: p for p in lake["outputFacets"]["openrouter_partitions"]["partitions"]}
    restated = partitions["rankings_daily/date=2025-07-03"]
    assert restated["status"] == "restated" and restated["previousSha256"] == before
    assert {
        p["status"] for k, p in partitions.items() if k != "rankings_daily/date=2025-07-03"
    } == {"unchanged"}
    data = env.files()["rankings_daily/date=2025-07-03/data.jsonl"]
    assert lake["outputFacets"]["outputStatistics"]["fileCount"] == 1
    assert lake["outputFacets"]["outputStatistics"]["size"] == len(data)
    assert lake["outputFacets"]["outputStatistics"]["rowCount"] == len(data.splitlines())
    assert observer.total("lake.partitions_rewritten", dataset="rankings-daily") == 1
    assert (
        observer.total("lake.partitions_written", dataset="rankings-daily", status="restated") == 1
    )
    assert observer.ours("lake.partitions_written", status="created") == []


def test_app_rankings_lineage_names_the_query_and_its_directory(
    env: Env, observer: Observer
) -> None:
    env.dag(
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, sort="trending", '
        'category="coding", max_apps=150)',
        schedule="weekly",
    )
    observer.run("2025-07-08")
    event = observer.complete("apps")
    [source] = event["inputs"]
    assert (source["namespace"], source["name"]) == (
        "https://openrouter.ai",
        "/api/v1/datasets/app-rankings",
    )
    sent = [r["params"] for r in env.emulator.requests]
    request = source["inputFacets"]["openrouter_request"]
    assert [{k: str(v) for k, v in p.items()} for p in request["parameters"]] == sent
    assert request["window"] == {"start": "2025-07-01", "end": "2025-07-07", "days": 7}
    assert "openrouter.ai/apps" in source["facets"]["documentation"]["description"]
    [lake] = event["outputs"]
    directory = "app_rankings/sort=trending/category=coding/subcategory=all"
    assert (lake["namespace"], lake["name"]) == ("file", f"{env.lake}/{directory}")
    data = env.files()[f"{directory}/window=2025-07-01_2025-07-07/data.jsonl"]
    stats = lake["outputFacets"]["outputStatistics"]
    assert (stats["rowCount"], stats["size"], stats["fileCount"]) == (
        len(data.splitlines()),
        len(data),
        1,
    )
    assert [f["name"] for f in lake["facets"]["schema"]["fields"]] == [
        "app_id",
        "app_name",
        "rank",
        "total_requests",
        "total_tokens",
    ]
    assert observer.total(
        "api.requests", endpoint="datasets.app-rankings", status_class="2xx"
    ) == len(sent)
    assert observer.total("lake.rows_written", dataset="app-rankings") == len(data.splitlines())
    assert (
        stored_xcom(env.dag_id, "apps", "_link_OpenRouterDatasetPageLink")
        == "https://openrouter.ai/apps"
    )
    assert (
        stored_xcom(env.dag_id, "apps", "_link_OpenRouterPartitionLink")
        == f"{env.uri}/{directory}/window=2025-07-01_2025-07-07/"
    )


def test_429s_and_a_quota_deferral_are_counted(env: Env, observer: Observer) -> None:
    env.dag(
        'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)'
    )
    env.emulator.inject("429", times=2, retry_after=0)
    env.emulator.inject(
        "429", times=1, retry_after=0, message="Daily request limit exceeded: 500 requests per day"
    )
    observer.run("2025-07-05")
    assert observer.total("api.rate_limited", endpoint="datasets.rankings-daily") == 3
    assert (
        observer.total("api.requests", endpoint="datasets.rankings-daily", status_class="4xx") == 3
    )
    assert (
        observer.total("api.requests", endpoint="datasets.rankings-daily", status_class="2xx") == 1
    )
    assert observer.total("quota.deferrals", dataset="rankings-daily", reason="quota") == 1
    assert (
        observer.total("lake.partitions_written", dataset="rankings-daily", status="created") == 1
    )


def test_a_direct_hook_call_reports_its_input_through_hook_lineage(
    env: Env, observer: Observer
) -> None:
    env.dag("""
from airflow.sdk import task

@task
def read_rankings():
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook

    return len(OpenRouterHook(CONN).get_rankings_daily("2025-07-01", "2025-07-02").rows)

read_rankings()
""")
    observer.run("2025-07-05")
    event = observer.complete("read_rankings")
    [source] = event["inputs"]
    assert (source["namespace"], source["name"]) == (
        "https://openrouter.ai",
        "/api/v1/datasets/rankings-daily",
    )
    assert source["facets"]["openrouter_request"]["parameters"] == [
        {"start_date": "2025-07-01", "end_date": "2025-07-02"}
    ]
    assert source["facets"]["openrouter_request"]["baseUrl"] == env.emulator.base_url
    assert "openrouter.ai/rankings" in source["facets"]["documentation"]["description"]
    assert event["outputs"] == []


def test_session_cost_lineage_carries_its_own_citation_caveats_and_page(
    env: Env, observer: Observer
) -> None:
    env.dag(
        "from airflow_provider_openrouter.operators.session_cost import SessionCostOperator\n"
        'SessionCostOperator(task_id="cost", output_uri=LAKE, openrouter_conn_id=CONN)',
        schedule="weekly",
    )
    observer.run("2026-03-01")
    [source] = observer.complete("cost")["inputs"]
    assert (source["namespace"], source["name"]) == (
        "https://openrouter.ai",
        "/api/v1/datasets/session-cost",
    )
    facts = source["facets"]["openrouter_source"]
    assert facts["citation"] == (
        "Source: OpenRouter (openrouter.ai), cost per session by harness and model, as of 2026-03-01T02:00:00Z."
    )
    assert facts["caveats"].startswith("Medians of per-session USD spend")
    assert facts["license"].startswith("CC BY 4.0")
    page = "https://openrouter.ai/docs/api/api-reference/datasets/cost-per-session-by-harness-and-model"
    assert stored_xcom(env.dag_id, "cost", "_link_OpenRouterDatasetPageLink") == page
    assert (
        stored_xcom(env.dag_id, "cost", "_link_OpenRouterPartitionLink")
        == f"{env.uri}/session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-02-23/"
    )
