"""Naming rules of the lineage datasets and the metric helpers (pure parts; the real runs are in
tests/operators/test_observability.py)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import pytest

from airflow_provider_openrouter.runtime import lineage, metrics


@pytest.mark.parametrize(
    ("base_url", "name"),
    [
        ("https://openrouter.ai/api/v1", "/api/v1/datasets/rankings-daily"),
        ("https://proxy.example/openrouter/api/v1/", "/openrouter/api/v1/datasets/rankings-daily"),
        ("http://127.0.0.1:8123", "/datasets/rankings-daily"),
    ],
)
def test_the_input_is_the_endpoint_path_under_the_base_url(base_url: str, name: str) -> None:
    assert lineage.endpoint_name(base_url, "/datasets/rankings-daily") == name
    assert (
        lineage.asset_uri(base_url, "/datasets/rankings-daily")
        == f"openrouter://openrouter.ai{name}"
    )


def test_credentials_in_a_base_url_never_reach_an_event() -> None:
    assert lineage.public_url(
        "https://user:sk-or-secret@proxy.example:8443/api/v1/?key=sk-or-x"
    ) == ("https://proxy.example:8443/api/v1")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///srv/lake/rankings_daily", ("file", "/srv/lake/rankings_daily")),
        ("s3://lake/openrouter/rankings_daily", ("s3://lake", "openrouter/rankings_daily")),
        (
            "memory://bucket/openrouter/rankings_daily",
            ("memory://bucket", "openrouter/rankings_daily"),
        ),
    ],
)
def test_outputs_follow_openlineage_naming_for_the_store(
    uri: str, expected: tuple[str, str]
) -> None:
    assert lineage.store_dataset_name(uri) == expected


def test_without_the_openlineage_provider_there_is_no_lineage_and_no_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a None entry in sys.modules makes the import raise ImportError
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    record = lineage.LandingRecord(
        dataset="rankings-daily",
        request_path="/datasets/rankings-daily",
        base_url="https://openrouter.ai/api/v1",
        output_uri="file:///srv/lake",
        output_dir="rankings_daily",
        window={},
        parameters=[],
        as_of="",
        requests=0,
        data_format="jsonl",
    )
    assert lineage.operator_lineage(record) is None


def test_status_classes_endpoint_tags_and_the_as_of_lag() -> None:
    assert [metrics.status_class(s) for s in (200, 429, 503, None)] == [
        "2xx",
        "4xx",
        "5xx",
        "error",
    ]
    assert metrics.endpoint_tag("/datasets/app-rankings") == "datasets.app-rankings"
    # proves 02-28 complete; that day ended 03-01 00:00
    as_of = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    assert (
        metrics.as_of_lag_seconds(as_of, now=datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc))
        == 3 * 3600
    )
    assert set(metrics.NAMES) == {
        "openrouter.api.requests",
        "openrouter.api.rate_limited",
        "openrouter.quota.deferrals",
        "openrouter.sensor.probes",
        "openrouter.lake.rows_written",
        "openrouter.lake.bytes_written",
        "openrouter.lake.partitions_written",
        "openrouter.lake.partitions_rewritten",
        "openrouter.as_of.lag",
    }
