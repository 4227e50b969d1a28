"""AnalyticsQueryOperator's lineage, metrics and links in a real run (see :mod:`tests.observing`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.observing import Observer, observe, stored_xcom

from .conftest import KEY, MGMT, AnalyticsEnv

pytestmark = pytest.mark.integration

BY_MODEL = (
    'AnalyticsQueryOperator(task_id="by_model", output_uri=LAKE, openrouter_conn_id=CONN,\n'
    '                       metrics=["total_tokens", "cost"], dimensions=["model"])'
)


@pytest.fixture
def observer(
    env: AnalyticsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Observer]:
    observing = observe(env.dag_id, tmp_path, monkeypatch)
    yield observing
    observing.statsd.close()


def test_an_analytics_run_reports_its_query_its_partitions_and_no_licence(
    env: AnalyticsEnv, observer: Observer
) -> None:
    env.dag(BY_MODEL)
    observer.run("2025-07-05")
    assert (
        KEY not in observer.events_file.read_text() and MGMT not in observer.events_file.read_text()
    )
    event = observer.complete("by_model")

    [source] = event["inputs"]
    assert (source["namespace"], source["name"]) == (
        "https://openrouter.ai",
        "/api/v1/analytics/query",
    )
    request = source["inputFacets"]["openrouter_request"]
    assert request["parameters"] == env.query_bodies()
    assert request["window"] == {"start": "2025-07-04", "end": "2025-07-04", "days": 1}
    assert request["requests"] == 2  # the meta request and the one query
    doc = source["facets"]["documentation"]["description"]
    assert "the organisation's own usage" in doc and "'by_model'" in doc
    assert "CC BY" not in doc and "license" not in source["facets"]["openrouter_source"]

    [lake] = event["outputs"]
    assert (lake["namespace"], lake["name"]) == ("file", f"{env.lake}/analytics/by_model")
    data = env.files()["analytics/by_model/date=2025-07-04/data.jsonl"]
    stats = lake["outputFacets"]["outputStatistics"]
    assert (stats["rowCount"], stats["size"], stats["fileCount"]) == (
        len(data.splitlines()),
        len(data),
        1,
    )
    assert [(f["name"], f["type"]) for f in lake["facets"]["schema"]["fields"]] == [
        ("date", "string"),
        ("model", "string"),
        ("total_tokens", "number"),
        ("cost", "number"),
    ]

    assert observer.total("api.requests", endpoint="analytics.meta", status_class="2xx") == 1
    assert observer.total("api.requests", endpoint="analytics.query", status_class="2xx") == 1
    assert observer.total("lake.rows_written", dataset="analytics") == len(data.splitlines())
    assert observer.total("lake.partitions_written", dataset="analytics", status="created") == 1
    assert observer.ours("as_of.lag") == []  # the analytics API has no as_of
    link = stored_xcom(env.dag_id, "by_model", "_link_OpenRouterPartitionLink")
    assert link == f"{env.uri}/analytics/by_model/date=2025-07-04/"
    # the organisation's own usage has no public page: no such link
    assert stored_xcom(env.dag_id, "by_model", "_link_OpenRouterDatasetPageLink") is None
