"""The manifest: every field the issue lists, exact serialisation, strict parsing."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from airflow_provider_openrouter import __version__
from airflow_provider_openrouter.api.datasets import CAVEATS, LICENSE
from airflow_provider_openrouter.lake import manifest
from airflow_provider_openrouter.windows.intervals import Window

META = {
    "as_of": "2026-03-01T02:00:00Z",
    "start_date": "2025-01-01",
    "end_date": "2025-01-31",
    "version": "v1",
    "new_field": [1],
}


def _build(**overrides: object) -> dict:
    kwargs = dict(
        dataset=manifest.RANKINGS_DAILY,
        partition="rankings_daily/date=2025-01-02",
        window=Window(date(2025, 1, 2), date(2025, 1, 2)),
        run_window=Window(date(2025, 1, 1), date(2025, 1, 31), clamped_from=date(2024, 12, 25)),
        request_path="/datasets/rankings-daily",
        request_params=[{"start_date": "2025-01-01", "end_date": "2025-01-31"}],
        meta=META,
        row_count=51,
        data_format="jsonl",
        data_file="data.jsonl",
        sha256="a" * 64,
        size=1234,
        fetched_at=datetime(2026, 3, 1, 3, 4, 5, tzinfo=timezone.utc),
    )
    kwargs.update(overrides)
    return manifest.build_manifest(**kwargs)  # type: ignore[arg-type]


def test_manifest_holds_every_documented_field() -> None:
    m = _build(previous_sha256="b" * 64)
    assert m["dataset"] == "rankings-daily"
    assert m["request"] == {
        "path": "/datasets/rankings-daily",
        "params": [{"start_date": "2025-01-01", "end_date": "2025-01-31"}],
    }
    assert m["meta"] == META  # verbatim, unknown keys included
    assert m["window"] == {
        "start": "2025-01-02",
        "end": "2025-01-02",
        "days": 1,
        "clamped_from": None,
    }
    assert m["run_window"] == {
        "start": "2025-01-01",
        "end": "2025-01-31",
        "days": 31,
        "clamped_from": "2024-12-25",
    }
    assert (m["row_count"], m["data_file"], m["sha256"], m["size"], m["format"]) == (
        51,
        "data.jsonl",
        "a" * 64,
        1234,
        "jsonl",
    )
    assert m["previous_sha256"] == "b" * 64
    assert m["fetched_at"] == "2026-03-01T03:04:05Z"
    assert m["provider_version"] == __version__
    assert (
        m["citation"] == "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
    )
    assert m["license"] == LICENSE and "CC BY 4.0" in m["license"]
    assert m["caveats"] == CAVEATS and "tokenizer" in m["caveats"]


def test_app_manifest_cites_the_apps_page_and_keeps_extras() -> None:
    m = _build(dataset=manifest.APP_RANKINGS, extra={"capped": False}, schema={"rank": "int64"})
    assert m["citation"] == "Source: OpenRouter (openrouter.ai/apps), as of 2026-03-01T02:00:00Z."
    assert m["capped"] is False and m["schema"] == {"rank": "int64"}


def test_dumps_is_stable_utf8_json_and_loads_round_trips() -> None:
    m = _build(meta={**META, "note": "café", "ratio": Decimal("0.25")})
    raw = manifest.dumps(m)
    assert raw.endswith(b"}\n") and "café".encode() in raw
    assert raw == manifest.dumps(m)
    back = manifest.loads(raw)
    assert back["meta"]["ratio"] == 0.25
    assert list(back)[:4] == ["manifest_version", "dataset", "partition", "window"]
    assert manifest.with_data_file(back, "_pending-x.jsonl")["data_file"] == "_pending-x.jsonl"
    assert back["data_file"] == "data.jsonl"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"dataset": "rankings-daily"}', "lacks manifest_version"),
    ],
)
def test_loads_rejects_what_cannot_be_a_commit_record(raw: bytes, message: str) -> None:
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.loads(raw)


@pytest.mark.parametrize("name", ["../data.jsonl", "sub/data.jsonl", "", "..", 7])
def test_loads_rejects_data_files_outside_the_partition(name: object) -> None:
    raw = json.dumps({**_build(), "data_file": name}).encode()
    with pytest.raises(manifest.ManifestError, match="must be a plain file name"):
        manifest.loads(raw)


@pytest.mark.parametrize("digest", ["A" * 64, "a" * 63, None, "g" * 64])
def test_loads_rejects_malformed_checksums(digest: object) -> None:
    with pytest.raises(manifest.ManifestError, match="64 lowercase hex digits"):
        manifest.loads(json.dumps({**_build(), "sha256": digest}).encode())


def test_unknown_dataset_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        _build(dataset="nope")


def test_a_derived_manifest_has_the_common_keys_and_its_inputs_as_provenance() -> None:
    source = _build()
    derived = manifest.build_manifest(
        dataset="weekly-share",
        partition="weekly/week=2025-01-06",
        window=None,
        meta={"as_of": "x"},
        row_count=2,
        data_format="jsonl",
        data_file="data.jsonl",
        sha256="c" * 64,
        size=10,
        inputs=[manifest.input_record(source)],
        computed_at=datetime(2026, 3, 2, tzinfo=timezone.utc),
    )
    common = {
        "manifest_version",
        "dataset",
        "partition",
        "window",
        "meta",
        "row_count",
        "format",
        "data_file",
        "sha256",
        "size",
        "previous_sha256",
        "provider_version",
        "citation",
        "license",
        "caveats",
    }
    assert common <= set(derived) and common <= set(source)
    assert set(source) - common == {"run_window", "request", "fetched_at"}
    assert set(derived) - common == {"inputs", "computed_at"}
    assert derived["inputs"] == [
        {
            "dataset": "rankings-daily",
            "partition": "rankings_daily/date=2025-01-02",
            "window": {"start": "2025-01-02", "end": "2025-01-02"},
            "sha256": "a" * 64,
            "row_count": 51,
            "as_of": "2026-03-01T02:00:00Z",
            "citation": source["citation"],
        }
    ]
    assert (
        derived["citation"] == "Derived from: " + source["citation"]
        and derived["computed_at"] == "2026-03-02T00:00:00Z"
    )
    assert manifest.loads(manifest.dumps(derived)) == derived


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "weekly-share"}, "needs inputs and computed_at"),
        ({"dataset": "Weekly Share!"}, "not a plain name"),
        ({"inputs": []}, "needs a name of its own"),
        ({"fetched_at": None}, "needs window, run_window"),
        ({"extra": {"sha256": "0" * 64}}, "would overwrite"),
    ],
)
def test_build_manifest_refuses_a_manifest_without_its_provenance(
    overrides: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _build(**overrides)


def _own(**overrides: object) -> dict:
    """The manifest of the caller's own data fetched with a POST (as analytics is)."""
    body = {
        "metrics": ["cost"],
        "time_range": {"start": "2025-07-04T00:00:00Z", "end": "2025-07-05T00:00:00Z"},
    }
    kwargs: dict = {
        "dataset": "usage",
        "own_data": True,
        "request_path": "/analytics/query",
        "request_params": None,
        "request_body": body,
        "request_details": {"slices": [body["time_range"]], "requests": 1},
        "meta": {"truncated": False},
        "extra": {"source": "my organisation's usage"},
    }
    kwargs.update(overrides)
    return _build(**kwargs)


def test_own_data_is_fetched_with_a_post_body_and_has_nothing_to_cite() -> None:
    m = _own()
    body = {
        "metrics": ["cost"],
        "time_range": {"start": "2025-07-04T00:00:00Z", "end": "2025-07-05T00:00:00Z"},
    }
    assert m["request"] == {
        "path": "/analytics/query",
        "body": body,
        "slices": [body["time_range"]],
        "requests": 1,
    }
    assert (m["citation"], m["license"], m["caveats"]) == (None, None, None)
    public = _build()
    assert list(m) == [*public, "source"]  # the same keys in the same order, then the extra
    assert m["run_window"] == public["run_window"] and m["fetched_at"] == public["fetched_at"]
    assert manifest.loads(manifest.dumps(m)) == m
    assert _own(caveats="Beta: numbers may change.")["caveats"] == "Beta: numbers may change."


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": manifest.RANKINGS_DAILY}, "public OpenRouter data with a citation"),
        ({"dataset": "My Usage"}, "not a plain name"),
        ({"citation": "Source: me"}, "no citation or licence"),
        ({"license": "CC0"}, "no citation or licence"),
        ({"request_params": [{"day": "2025-07-04"}]}, "exactly one of them"),
        ({"request_body": None}, "exactly one of them"),
        ({"request_path": None}, "needs window, run_window, request_path and fetched_at"),
        ({"request_details": {"body": {}}}, "would overwrite the request's own"),
        ({"inputs": []}, "needs a name of its own"),
    ],
)
def test_own_data_needs_its_request_and_no_public_terms(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _own(**overrides)


def test_data_derived_only_from_own_data_is_not_cited_as_openrouter_s() -> None:
    own = manifest.input_record(_own())
    assert own["citation"] is None
    derived: dict = {
        "dataset": "usage-weekly",
        "partition": "usage_weekly/week=2025-06-30",
        "meta": {},
        "row_count": 1,
        "data_format": "jsonl",
        "data_file": "data.jsonl",
        "sha256": "d" * 64,
        "size": 5,
        "computed_at": datetime(2026, 3, 2, tzinfo=timezone.utc),
    }
    m = manifest.build_manifest(inputs=[own], **derived)
    assert (m["citation"], m["license"], m["caveats"]) == (None, None, None)
    mixed = manifest.build_manifest(inputs=[own, manifest.input_record(_build())], **derived)
    assert mixed["citation"] == "Derived from: " + _build()["citation"]
    assert (mixed["license"], mixed["caveats"]) == (LICENSE, CAVEATS)
