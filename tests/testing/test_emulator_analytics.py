"""The emulator's beta analytics endpoints, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from airflow_provider_openrouter.testing import Emulator
from airflow_provider_openrouter.testing.analytics_engine import (
    API_KEY_HASHES,
    APPS,
    MODELS,
    hour_events,
)

KEY, MGMT = "sk-or-emulator", "sk-or-mgmt-emulator"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
META, QUERY = "/analytics/meta", "/analytics/query"
DAY = {"start": "2025-05-06T00:00:00Z", "end": "2025-05-07T00:00:00Z"}
HTTP = httpx.Client(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _close_http_client() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def em(openrouter_emulator: Emulator) -> Emulator:
    openrouter_emulator.set_now(NOW)
    return openrouter_emulator


def post(em: Emulator, body: Any, key: str | None = MGMT) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return HTTP.post(em.base_url + QUERY, headers=headers, json=body)


def query(em: Emulator, **body: Any) -> dict[str, Any]:
    """The ``data`` of a successful query, numbers decoded exactly."""
    response = post(em, {"time_range": DAY, **body})
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)["data"]


def assert_error(response: httpx.Response, status: int, message_part: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and message_part in error["message"], error["message"]


def test_meta_lists_metrics_dimensions_granularities_operators(em: Emulator) -> None:
    response = HTTP.get(em.base_url + META, headers={"Authorization": f"Bearer {MGMT}"})
    data = response.json()["data"]
    assert response.status_code == 200 and set(data) == {
        "metrics",
        "dimensions",
        "granularities",
        "operators",
    }
    metrics = {m["name"]: m for m in data["metrics"]}
    assert metrics["avg_latency_ms"]["is_rate"] is True and metrics["cost"] == {
        "name": "cost",
        "display_label": "Cost",
        "display_format": "currency",
        "is_rate": False,
    }
    assert [d["name"] for d in data["dimensions"]] == ["model", "provider", "app", "api_key_hash"]
    assert [g["name"] for g in data["granularities"]] == ["minute", "hour", "day", "week", "month"]
    assert {o["name"]: o["value_type"] for o in data["operators"]} == {
        "eq": "scalar",
        "neq": "scalar",
        "in": "array",
        "not_in": "array",
        "gt": "scalar",
        "gte": "scalar",
        "lt": "scalar",
        "lte": "scalar",
    }


def test_management_keys_only(em: Emulator) -> None:
    plain = post(em, {"metrics": ["cost"]}, key=KEY)
    assert plain.status_code == 403 and plain.json() == {
        "error": {"code": 403, "message": "Management key required", "metadata": None}
    }
    assert_error(
        HTTP.get(em.base_url + META, headers={"Authorization": f"Bearer {KEY}"}),
        403,
        "Management key required",
    )
    assert_error(post(em, {"metrics": ["cost"]}, key="sk-or-nobody"), 401, "Invalid API key")
    assert_error(post(em, {"metrics": ["cost"]}, key=None), 401, "Missing Authentication header")
    key_info = HTTP.get(em.base_url + "/key", headers={"Authorization": f"Bearer {MGMT}"}).json()[
        "data"
    ]
    assert key_info["is_provisioning_key"] is True  # a management key is a valid key everywhere
    assert (
        HTTP.get(
            em.base_url + "/datasets/rankings-daily", headers={"Authorization": f"Bearer {MGMT}"}
        ).status_code
        == 200
    )
    assert_error(
        HTTP.get(em.base_url + QUERY, headers={"Authorization": f"Bearer {MGMT}"}),
        405,
        "Method GET",
    )
    assert_error(
        HTTP.post(em.base_url + META, headers={"Authorization": f"Bearer {MGMT}"}),
        405,
        "Method POST",
    )


def test_custom_management_keys(openrouter_emulator_factory: Any) -> None:
    em = openrouter_emulator_factory(
        management_keys=("m1", "m2"), rpm=None, daily_limit=None, now=NOW
    )
    assert post(em, {"metrics": ["cost"]}, key="m2").status_code == 200
    assert post(em, {"metrics": ["cost"]}, key=MGMT).status_code == 401


@pytest.mark.parametrize(
    "body,message",
    [
        (
            {"metrics": ["cost", "spend"]},
            "Invalid metric 'spend'. Valid metrics: request_count, prompt_tokens",
        ),
        ({"metrics": []}, "at least one metric"),
        ({}, "at least one metric"),
        (
            {"metrics": ["cost"], "dimensions": ["model", "app", "provider"]},
            "at most 2 dimensions allowed, got 3",
        ),
        ({"metrics": ["cost"], "dimensions": ["country"]}, "Invalid dimension 'country'"),
        (
            {
                "metrics": ["cost"],
                "filters": [
                    {"field": "model", "operator": "eq", "value": f"m{i}"} for i in range(21)
                ],
            },
            "at most 20 filters",
        ),
        (
            {
                "metrics": ["cost"],
                "time_range": {"start": "2025-05-06T00:00Z", "end": "2025-05-07T00:00:00Z"},
            },
            "with seconds",
        ),
        (
            {
                "metrics": ["cost"],
                "time_range": {"start": "2025-05-06", "end": "2025-05-07T00:00:00Z"},
            },
            "Invalid time_range.start",
        ),
        (
            {
                "metrics": ["cost"],
                "time_range": {"start": "2025-05-07T00:00:00Z", "end": "2025-05-07T00:00:00Z"},
            },
            "start must be before end",
        ),
        (
            {"metrics": ["cost"], "granularity": "year"},
            "Invalid granularity 'year'. Valid granularities: minute, hour, day, week, month",
        ),
        (
            {"metrics": ["cost"], "filters": [{"field": "app", "operator": "in", "value": 1001}]},
            "operator in expects a non-empty array",
        ),
        (
            {
                "metrics": ["cost"],
                "filters": [{"field": "app", "operator": "eq", "value": "Acme Support Bot"}],
            },
            "numeric app ids",
        ),
        (
            {
                "metrics": ["cost"],
                "filters": [{"field": "model", "operator": "like", "value": "x"}],
            },
            "Invalid filters[0].operator 'like'",
        ),
        ({"metrics": ["cost"], "limit": 0}, "Invalid limit"),
        ({"metrics": ["cost"], "limit": 10001}, "Invalid limit"),
        (
            {"metrics": ["cost"], "order_by": {"field": "provider", "direction": "asc"}},
            "Invalid order_by.field 'provider'",
        ),
        ({"metrics": ["cost"], "timeRange": DAY}, "Unrecognized key(s) in request body: timeRange"),
        ([], "expected a JSON object"),
    ],
)
def test_invalid_queries_are_400(em: Emulator, body: Any, message: str) -> None:
    assert_error(post(em, body), 400, message)


def test_rows_labels_and_exact_numbers(em: Emulator) -> None:
    raw = post(
        em,
        {
            "metrics": ["request_count", "cost", "avg_latency_ms"],
            "dimensions": ["model", "app"],
            "time_range": DAY,
        },
    )
    assert re.search(
        rb'"cost":[0-9]+\.[0-9]{15}[,}]', raw.content
    )  # a JSON number with every digit, no exponent
    data = json.loads(raw.content, parse_float=Decimal)["data"]
    assert (
        data["metadata"]["truncated"] is False
        and data["metadata"]["row_count"] == len(data["data"]) > 5
    )
    labels = {m.label for m in MODELS}
    for row in data["data"]:
        assert list(row) == ["model", "app", "request_count", "cost", "avg_latency_ms"]
        assert (
            row["model"] in labels
            and row["app"] in APPS.values()
            and type(row["request_count"]) is int
        )
        assert type(row["cost"]) is Decimal and row["avg_latency_ms"].as_tuple().exponent == -3
    assert [r["request_count"] for r in data["data"]] == sorted(
        (r["request_count"] for r in data["data"]), reverse=True
    )


def test_granularities_add_up_exactly(em: Emulator) -> None:
    metrics = ["request_count", "total_tokens", "prompt_tokens", "completion_tokens", "cost"]
    total = query(em, metrics=metrics)["data"][0]
    assert total["total_tokens"] == total["prompt_tokens"] + total["completion_tokens"]
    for granularity, buckets in (
        ("hour", 24),
        ("minute", None),
        ("day", 1),
        ("week", 1),
        ("month", 1),
    ):
        rows = query(em, metrics=metrics, granularity=granularity, limit=10000)["data"]
        assert buckets is None or len(rows) <= buckets
        assert {m: sum(r[m] for r in rows) for m in metrics} == total
    weeks = query(
        em,
        metrics=["cost"],
        granularity="week",
        time_range={"start": "2025-05-01T00:00:00Z", "end": "2025-05-19T00:00:00Z"},
    )["data"]
    assert [r["date"] for r in weeks] == [
        "2025-04-28T00:00:00Z",
        "2025-05-05T00:00:00Z",
        "2025-05-12T00:00:00Z",
    ]  # Mondays


def test_time_ranges_are_half_open_and_end_at_now(em: Emulator) -> None:
    def cost(start: str, end: str) -> Decimal:
        rows = query(em, metrics=["cost"], time_range={"start": start, "end": end})["data"]
        return rows[0]["cost"] if rows else Decimal(0)

    middle = "2025-05-06T13:27:05Z"
    assert cost(DAY["start"], middle) + cost(middle, DAY["end"]) == cost(DAY["start"], DAY["end"])
    assert (
        cost("2025-06-01T12:00:00Z", "2025-07-01T00:00:00Z") == 0
    )  # no usage after the emulator's now
    assert (
        cost("2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z") == 0
    )  # nor before the organisation's start
    events = hour_events(datetime(2025, 5, 6, 10, tzinfo=timezone.utc))
    assert len(events) >= 2
    at = events[1].at.strftime("%Y-%m-%dT%H:%M:%SZ")
    before = query(
        em, metrics=["request_count"], time_range={"start": "2025-05-06T10:00:00Z", "end": at}
    )["data"]
    assert before == [
        {"request_count": sum(e.requests for e in events if e.at < events[1].at)}
    ]  # end excluded
    since = query(
        em, metrics=["request_count"], time_range={"start": at, "end": "2025-05-06T11:00:00Z"}
    )["data"]
    assert since == [
        {"request_count": sum(e.requests for e in events if e.at >= events[1].at)}
    ]  # start included


def test_default_time_range_is_the_last_30_days(em: Emulator) -> None:
    default = query(em, metrics=["cost"], time_range=None)
    explicit = query(
        em,
        metrics=["cost"],
        time_range={"start": "2025-05-02T12:00:00Z", "end": "2025-06-01T12:00:00Z"},
    )
    assert default["data"] == explicit["data"]


def test_filters_take_ids_and_rows_show_labels(em: Emulator) -> None:
    by_model = {
        r["model"]: r["cost"] for r in query(em, metrics=["cost"], dimensions=["model"])["data"]
    }
    only = query(
        em,
        metrics=["cost"],
        dimensions=["model"],
        filters=[{"field": "model", "operator": "eq", "value": MODELS[0].permaslug}],
    )["data"]
    assert only == [{"model": MODELS[0].label, "cost": by_model[MODELS[0].label]}]
    rest = query(
        em,
        metrics=["cost"],
        dimensions=["model"],
        filters=[{"field": "model", "operator": "not_in", "value": [MODELS[0].permaslug]}],
    )["data"]
    assert {r["model"] for r in rest} == set(by_model) - {MODELS[0].label}
    apps = query(
        em,
        metrics=["request_count"],
        dimensions=["app"],
        filters=[{"field": "app", "operator": "in", "value": [1001, "1003"]}],
    )["data"]
    assert {r["app"] for r in apps} == {APPS[1001], APPS[1003]}
    high = query(
        em,
        metrics=["request_count"],
        dimensions=["app"],
        filters=[{"field": "app", "operator": "gt", "value": 1002}],
    )["data"]
    assert {r["app"] for r in high} == {APPS[1003], APPS[1004]}
    keyed = query(
        em,
        metrics=["cost"],
        dimensions=["api_key_hash"],
        filters=[
            {"field": "api_key_hash", "operator": "in", "value": [API_KEY_HASHES[0], "f" * 64]}
        ],
    )
    assert [r["api_key_hash"] for r in keyed["data"]] == [API_KEY_HASHES[0]]
    assert keyed["warnings"] == [
        f"api_key_hash {'f' * 64!r} could not be resolved to a key of this organization"
    ]
    none = query(
        em, metrics=["cost"], filters=[{"field": "provider", "operator": "eq", "value": "Nobody"}]
    )["data"]
    assert none == []


def test_order_by_group_limit_and_truncation(em: Emulator) -> None:
    asc = query(
        em,
        metrics=["request_count"],
        dimensions=["model"],
        order_by={"field": "cost", "direction": "asc"},
    )["data"]
    costs = {
        r["model"]: r["cost"] for r in query(em, metrics=["cost"], dimensions=["model"])["data"]
    }
    assert [r["model"] for r in asc] == sorted(costs, key=costs.__getitem__)
    latest = query(
        em, metrics=["cost"], granularity="hour", order_by={"field": "date", "direction": "desc"}
    )["data"]
    assert [r["date"] for r in latest] == sorted((r["date"] for r in latest), reverse=True)
    full = query(em, metrics=["cost"], dimensions=["model"], granularity="hour")["data"]
    capped = query(em, metrics=["cost"], dimensions=["model"], granularity="hour", group_limit=2)
    per_model: dict[str, int] = {}
    for row in capped["data"]:
        per_model[row["model"]] = per_model.get(row["model"], 0) + 1
    assert (
        max(per_model.values()) == 2
        and len(capped["data"]) < len(full)
        and capped["metadata"]["truncated"] is False
    )
    cut = query(em, metrics=["cost"], dimensions=["model"], granularity="hour", limit=10)
    assert cut["data"] == full[:10] and cut["metadata"] == {
        "query_time_ms": cut["metadata"]["query_time_ms"],
        "row_count": 10,
        "truncated": True,
    }
    exact = query(em, metrics=["cost"], dimensions=["model"], granularity="hour", limit=len(full))
    assert exact["metadata"]["truncated"] is False


def test_default_limit_is_1000(em: Emulator) -> None:
    data = query(
        em,
        metrics=["request_count"],
        dimensions=["model"],
        granularity="minute",
        time_range={"start": "2025-05-01T00:00:00Z", "end": "2025-06-01T00:00:00Z"},
    )
    assert (
        len(data["data"]) == 1000
        and data["metadata"]["truncated"] is True
        and data["metadata"]["row_count"] == 1000
    )


def test_repeated_queries_say_since_when_they_are_cached(em: Emulator) -> None:
    first = query(em, metrics=["cost"])
    em.set_now(NOW + timedelta(minutes=5))
    second = query(em, metrics=["cost"])
    assert (
        "cachedAt" not in first
        and second["cachedAt"] == int(NOW.timestamp() * 1000)
        and second["data"] == first["data"]
    )


def test_408_beyond_the_timeout_span_and_its_control_endpoint(em: Emulator) -> None:
    body = {
        "metrics": ["cost"],
        "time_range": {"start": "2025-05-01T00:00:00Z", "end": "2025-05-03T00:00:00Z"},
    }
    assert post(em, body).status_code == 200
    assert HTTP.post(
        f"{em.url}/_emulator/analytics", json={"timeout_span_seconds": 86400}
    ).json() == {"ok": True}
    assert em.analytics_timeout_span == timedelta(days=1)
    assert HTTP.get(f"{em.url}/_emulator/analytics").json()["timeout_span_seconds"] == 86400
    assert_error(post(em, body), 408, "Query timed out")
    assert (
        post(
            em,
            {
                **body,
                "time_range": {"start": "2025-05-01T00:00:00Z", "end": "2025-05-02T00:00:00Z"},
            },
        ).status_code
        == 200
    )
    HTTP.post(f"{em.url}/_emulator/analytics", json={"timeout_span_seconds": None})
    assert post(em, body).status_code == 200 and em.analytics_timeout_span is None
    assert (
        HTTP.post(f"{em.url}/_emulator/analytics", json={"timeout_span_seconds": -5}).status_code
        == 400
    )
    with pytest.raises(ValueError):
        em.set_analytics_timeout_span(timedelta(0))


def test_limits_faults_and_log_apply_to_analytics(openrouter_emulator_factory: Any) -> None:
    em = openrouter_emulator_factory(rpm=2, daily_limit=None, now=NOW)
    assert post(em, {"metrics": ["cost"]}, key=KEY).status_code == 403  # not counted
    em.inject("503", path=QUERY)
    assert post(em, {"metrics": ["cost"]}).status_code == 503  # a fault: not counted
    assert [post(em, {"metrics": ["cost"], "limit": 5}).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    log = [e for e in em.requests if e["path"].endswith(QUERY)]
    assert [(e["status"], e["fault"]) for e in log] == [
        (403, None),
        (503, "503"),
        (200, None),
        (200, None),
        (429, None),
    ]
    assert log[2]["method"] == "POST" and log[2]["body"] == {"metrics": ["cost"], "limit": 5}
    assert MGMT not in json.dumps(log)


def test_cli_management_key_and_timeout_span(em: Emulator) -> None:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_openrouter.testing.emulator",
        "--port",
        "0",
        "--rpm",
        "0",
        "--now",
        "2025-06-01T12:00:00Z",
        "--management-key",
        "mk1",
        "--analytics-timeout-span",
        "3600",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        body = {
            "metrics": ["cost", "request_count"],
            "dimensions": ["model"],
            "time_range": {"start": "2025-05-06T00:00:00Z", "end": "2025-05-06T01:00:00Z"},
        }
        remote = HTTP.post(base_url + QUERY, json=body, headers={"Authorization": "Bearer mk1"})
        assert (
            remote.status_code == 200 and remote.content == post(em, body).content
        )  # deterministic across processes
        assert (
            HTTP.post(
                base_url + QUERY,
                json={**body, "time_range": DAY},
                headers={"Authorization": "Bearer mk1"},
            ).status_code
            == 408
        )
        assert (
            HTTP.post(
                base_url + QUERY, json=body, headers={"Authorization": f"Bearer {MGMT}"}
            ).status_code
            == 401
        )
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0 and stderr == ""
