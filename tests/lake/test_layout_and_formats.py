"""Partition paths and data-file bytes: pure functions, pinned because downstream tools read them."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily
from airflow_provider_openrouter.exceptions import InvalidParameterError, InvalidResponseError
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.windows.intervals import Window


def test_rankings_partition_layout_is_pinned() -> None:
    assert rankings_daily.partition_key(date(2025, 7, 4)) == "rankings_daily/date=2025-07-04"
    assert (
        storage.join("s3://lake/openrouter/", rankings_daily.partition_key(date(2025, 1, 1)))
        == "s3://lake/openrouter/rankings_daily/date=2025-01-01"
    )
    path = storage.join(
        ObjectStoragePath("file:///tmp/lake"), rankings_daily.partition_key(date(2025, 1, 1))
    )
    assert isinstance(path, ObjectStoragePath)
    assert path.path == "/tmp/lake/rankings_daily/date=2025-01-01"


@pytest.mark.parametrize(
    ("sort", "category", "subcategory", "expected"),
    [
        (
            "popular",
            None,
            None,
            "app_rankings/sort=popular/category=all/subcategory=all/window=2025-06-01_2025-06-30",
        ),
        (
            "trending",
            "coding",
            None,
            "app_rankings/sort=trending/category=coding/subcategory=all/window=2025-06-01_2025-06-30",
        ),
        (
            "popular",
            "coding",
            "cli-agent",
            "app_rankings/sort=popular/category=coding/subcategory=cli-agent/window=2025-06-01_2025-06-30",
        ),
        (
            "popular",
            None,
            "roleplay",
            "app_rankings/sort=popular/category=all/subcategory=roleplay/window=2025-06-01_2025-06-30",
        ),
    ],
)
def test_app_partition_layout_is_pinned(
    sort: str, category: str | None, subcategory: str | None, expected: str
) -> None:
    window = Window(date(2025, 6, 1), date(2025, 6, 30))
    assert app_rankings.partition_key(sort, category, subcategory, window) == expected
    assert (
        storage.join("file:///x", app_rankings.partition_key(sort, category, subcategory, window))
        == "file:///x/" + expected
    )


def test_s3_paths_join_without_touching_the_network() -> None:
    path = storage.join(
        ObjectStoragePath("s3://lake/openrouter", conn_id="aws_x"),
        rankings_daily.partition_key(date(2025, 2, 3)),
    )
    assert (path.protocol, path.path) == ("s3", "lake/openrouter/rankings_daily/date=2025-02-03")


def test_jsonl_is_compact_ordered_exact_and_one_line_per_record() -> None:
    records = [
        {"date": "2025-07-04", "model_permaslug": "openai/gpt-4o", "total_tokens": 2**60 + 1},
        {"app_id": 7, "app_name": 'Zed "IDE", the 🦀 one\nsecond line\u2028', "rank": 1},
    ]
    data = storage.jsonl_bytes(records)
    assert data.startswith(
        b'{"date":"2025-07-04","model_permaslug":"openai/gpt-4o","total_tokens":1152921504606846977}\n'
    )
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    assert "🦀".encode() in lines[1]  # non-ASCII kept as UTF-8, not \u-escaped
    assert [json.loads(line) for line in lines[:2]] == records
    assert list(json.loads(lines[0])) == ["date", "model_permaslug", "total_tokens"]
    assert storage.jsonl_bytes(records) == data  # deterministic
    assert (
        storage.jsonl_bytes([{"z": 1, "a": [2]}]) == b'{"z":1,"a":[2]}\n'
    )  # record order, not sorted
    assert storage.jsonl_bytes([]) == b""


def test_jsonl_escapes_a_record_that_utf8_cannot_hold() -> None:
    data = storage.jsonl_bytes([{"app_name": "bad \ud800 surrogate", "rank": 1}, {"app_name": "é"}])
    data.decode("utf-8")  # valid UTF-8 throughout
    first, second, _ = data.split(b"\n")
    assert json.loads(first) == {"app_name": "bad \ud800 surrogate", "rank": 1}
    assert second == '{"app_name":"é"}'.encode()


def _read_parquet(data: bytes):
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data), use_threads=False)


def test_parquet_has_exact_types_and_is_deterministic() -> None:
    records = [
        {"date": "2025-07-04", "model_permaslug": "a/b", "total_tokens": 2**62 + 1},
        {"date": "2025-07-04", "model_permaslug": "other", "total_tokens": 3},
    ]
    data, schema = storage.parquet_bytes(records, rankings_daily.COLUMNS)
    assert schema == {"date": "date32", "model_permaslug": "string", "total_tokens": "int64"}
    table = _read_parquet(data)
    assert str(table.schema.field("total_tokens").type) == "int64"
    assert table.column("total_tokens").to_pylist() == [2**62 + 1, 3]
    assert table.column("date").to_pylist() == [date(2025, 7, 4)] * 2
    assert storage.parquet_bytes(records, rankings_daily.COLUMNS)[0] == data


def test_parquet_falls_back_to_decimal_beyond_int64_and_refuses_beyond_38_digits() -> None:
    records = [
        {"app_id": 1, "app_name": "x", "rank": 1, "total_requests": 5, "total_tokens": 2**64 + 3}
    ]
    data, schema = storage.parquet_bytes(records, app_rankings.COLUMNS)
    assert schema["total_tokens"] == "decimal128(38,0)" and schema["total_requests"] == "int64"
    assert _read_parquet(data).column("total_tokens").to_pylist() == [Decimal(2**64 + 3)]
    with pytest.raises(InvalidResponseError, match="exceeds 38 digits"):
        storage.parquet_bytes([{**records[0], "total_tokens": 10**38}], app_rankings.COLUMNS)


def test_parquet_of_no_rows_keeps_the_schema() -> None:
    data, schema = storage.parquet_bytes([], app_rankings.COLUMNS)
    table = _read_parquet(data)
    assert table.num_rows == 0
    assert table.column_names == [name for name, _ in app_rankings.COLUMNS]
    assert schema["total_tokens"] == "int64"


def test_serialise_dispatches_and_rejects_unknown_formats() -> None:
    records = [{"date": "2025-01-01", "model_permaslug": "m", "total_tokens": 1}]
    assert storage.serialise(records, rankings_daily.COLUMNS, "jsonl") == (
        storage.jsonl_bytes(records),
        None,
    )
    assert storage.serialise(records, rankings_daily.COLUMNS, "parquet")[1] is not None
    with pytest.raises(
        InvalidParameterError, match="format='csv' is not supported; use one of jsonl, parquet"
    ):
        storage.serialise(records, rankings_daily.COLUMNS, "csv")
    assert storage.data_file_name("parquet") == "data.parquet"
