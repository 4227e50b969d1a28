"""The public reader and writer: ``lake.read_records`` and ``lake.land_partitions`` on real local files."""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter import lake
from airflow_provider_openrouter.api.datasets import CAVEATS, LICENSE, rankings_daily
from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.windows import Window

from .helpers import DAY, commit_days, manifest_for, records, stage, write

pytest.importorskip("pyarrow")

WEEK = Window(date(2025, 7, 7), date(2025, 7, 13))
BIG = 2**63 + 12345  # beyond int64: parquet holds it as decimal128(38, 0)
COLUMNS = [("day", "date"), ("name", "string"), ("tokens", "int"), ("share", "float")]


@pytest.fixture
def base(tmp_path: Path) -> ObjectStoragePath:
    return ObjectStoragePath((tmp_path / "lake").as_uri())


def files(directory: ObjectStoragePath) -> dict[str, bytes]:
    return {
        name: Path(directory.path, name).read_bytes() for name in sorted(os.listdir(directory.path))
    }


def stamps(directory: ObjectStoragePath) -> dict[str, int]:
    return {
        name: os.stat(Path(directory.path, name)).st_mtime_ns for name in os.listdir(directory.path)
    }


def derived(
    key: str, version: int, inputs: list[lake.CommittedPartition] = ()
) -> lake.DerivedPartition:  # type: ignore[assignment]
    rows = [
        {"day": "2025-07-07", "name": "a/é", "tokens": 10**18 + version, "share": 0.25},
        {"day": "2025-07-13", "name": "other", "tokens": 3, "share": 0.75},
    ]
    return lake.DerivedPartition(key, rows, inputs=inputs, window=WEEK, meta={"method": "sum"})


# ---------------------------------------------------------------------- read_records
@pytest.mark.parametrize("data_format", ["jsonl", "parquet"])
def test_read_records_gives_back_the_records_written_with_exact_types(
    base: ObjectStoragePath, data_format: str
) -> None:
    directory = base / rankings_daily.partition_key(DAY)
    write(directory, 7, data_format)
    got = lake.read_records(directory)
    assert got == records(7)
    assert all(type(r["total_tokens"]) is int and type(r["date"]) is str for r in got)
    assert got[0]["total_tokens"] == 3 * 10**15 + 7  # exact beyond 2**53
    # the same through a URL and through a CommittedPartition
    assert lake.read_records(directory.as_uri()) == got
    assert lake.read_records(lake.read_partition(directory)) == got


@pytest.mark.parametrize("data_format", ["jsonl", "parquet"])
def test_date_column_checks_every_record_lies_in_the_partition_s_window(
    base: ObjectStoragePath, data_format: str
) -> None:
    directory = base / rankings_daily.partition_key(DAY)
    write(directory, 1, data_format)
    assert lake.read_records(directory, date_column="date") == records(1)
    other = base / rankings_daily.partition_key(date(2025, 7, 5))
    staged = stage(other, 1, data_format)  # rows of DAY (2025-07-04), filed as 2025-07-05:
    storage.commit_partition(staged, manifest_for(staged, date(2025, 7, 5)))
    assert lake.read_records(other) == records(1)  # without the check: the bytes match the manifest
    with pytest.raises(
        lake.PartitionIntegrityError,
        match=r"record 0 has date='2025-07-04', outside the partition's window 2025-07-05\.\.2025-07-05",
    ):
        lake.read_records(other, date_column="date")
    with pytest.raises(lake.PartitionIntegrityError, match=r"record 0 has day=None"):
        lake.read_records(directory, date_column="day")


def test_both_formats_read_the_same_records_big_integers_decimals_and_dates(
    base: ObjectStoragePath,
) -> None:
    rows = [
        {"day": "2025-07-07", "name": "x", "tokens": BIG, "share": 0.1},
        {"day": "2025-07-08", "name": "y\u2028z", "tokens": 1, "share": 1 / 3},
    ]
    read = {}
    for data_format in ("jsonl", "parquet"):
        root = base / data_format
        lake.land_partitions(
            root,
            "mixed",
            [lake.DerivedPartition("m/p=1", rows)],
            format=data_format,
            columns=COLUMNS,
        )
        read[data_format] = lake.read_records(root / "m/p=1")
    assert read["jsonl"] == read["parquet"]
    first, second = read["parquet"]
    assert first == {"day": "2025-07-07", "name": "x", "tokens": BIG, "share": Decimal("0.1")}
    assert type(first["tokens"]) is int and type(first["share"]) is Decimal
    assert second["share"] == Decimal(repr(1 / 3)) and second["name"] == "y\u2028z"
    manifest = lake.read_partition(base / "parquet" / "m/p=1").manifest
    assert manifest["schema"] == {
        "day": "date32",
        "name": "string",
        "tokens": "decimal128(38,0)",
        "share": "double",
    }


def test_decimals_are_written_and_read_back_with_every_digit(base: ObjectStoragePath) -> None:
    rows = [
        {"cost": Decimal("0.000000123456789012345678901"), "n": 1},
        {"cost": Decimal("12.50"), "n": 2},
    ]
    lake.land_partitions(base, "costs", [lake.DerivedPartition("costs/d=1", rows)])
    assert (base / "costs/d=1/data.jsonl").read_bytes() == (
        b'{"cost":0.000000123456789012345678901,"n":1}\n{"cost":12.50,"n":2}\n'
    )
    got = lake.read_records(base / "costs/d=1")
    assert got == rows and [str(r["cost"]) for r in got] == ["1.23456789012345678901E-7", "12.50"]


@pytest.mark.parametrize("data_format", ["jsonl", "parquet"])
def test_a_tampered_data_file_is_refused(base: ObjectStoragePath, data_format: str) -> None:
    directory = base / rankings_daily.partition_key(DAY)
    write(directory, 1, data_format)
    data_file = Path(directory.path, f"data.{data_format}")
    data = bytearray(data_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    data_file.write_bytes(bytes(data))
    with pytest.raises(
        lake.PartitionIntegrityError, match=f"data file 'data.{data_format}' does not match"
    ):
        lake.read_records(directory)


def test_a_missing_partition_is_named(base: ObjectStoragePath) -> None:
    with pytest.raises(
        lake.PartitionMissingError, match=r"date=2025-07-04 has no committed partition"
    ):
        lake.read_records(base / rankings_daily.partition_key(DAY))
    with pytest.raises(TypeError, match="partition directory"):
        lake.read_records("relative/path")  # type: ignore[arg-type]


def test_read_partitions_returns_them_in_order_or_names_every_missing_one(
    base: ObjectStoragePath,
) -> None:
    days = [date(2025, 7, 1), date(2025, 7, 2), date(2025, 7, 3)]
    commit_days(base, 1, days[:1] + days[2:])
    keys = [rankings_daily.partition_key(d) for d in days]
    with pytest.raises(lake.PartitionMissingError) as caught:
        lake.read_partitions(base, keys, needed_by="the report needs all three days")
    assert caught.value.missing == [str(base / keys[1])]
    assert "date=2025-07-02 has no committed partition: the report needs all three days." in str(
        caught.value
    )
    commit_days(base, 1, days[1:2])
    parts = lake.read_partitions(base, keys)
    assert [p.manifest["partition"] for p in parts] == keys
    assert [lake.read_records(p)[0]["date"] for p in parts] == [d.isoformat() for d in days]
    # one citation line per distinct source and as_of, in order
    cite = "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
    assert lake.citations(parts) == [cite]
    restated = {**parts[2].manifest, "citation": cite.replace("2026-03-01", "2026-03-02")}
    parts[2] = lake.CommittedPartition(parts[2].directory, restated, parts[2].data)
    assert lake.citations(parts) == [cite, restated["citation"]]


# ---------------------------------------------------------------------- land_partitions
def test_land_partitions_commits_data_and_a_manifest_of_the_common_schema(
    base: ObjectStoragePath,
) -> None:
    days = [date(2025, 7, 7), date(2025, 7, 8)]
    commit_days(base, 1, days)
    inputs = lake.read_partitions(base, [rankings_daily.partition_key(d) for d in days])
    [landed] = lake.land_partitions(
        base, "weekly-share", [derived("weekly/week=2025-07-07", 1, inputs)]
    )
    assert (landed.status, landed.previous_sha256, landed.row_count) == ("created", None, 2)
    directory = base / "weekly/week=2025-07-07"
    assert list(files(directory)) == ["_manifest.json", "data.jsonl"]
    part = lake.read_partition(directory)
    m = part.manifest
    assert list(m) == [
        "manifest_version", "dataset", "partition", "window", "inputs", "meta", "row_count", "format",
        "data_file", "sha256", "size", "previous_sha256", "computed_at", "provider_version", "citation",
        "license", "caveats",
    ]  # fmt: skip
    assert (m["dataset"], m["partition"], m["row_count"], m["format"]) == (
        "weekly-share",
        "weekly/week=2025-07-07",
        2,
        "jsonl",
    )
    assert m["window"] == {
        "start": "2025-07-07",
        "end": "2025-07-13",
        "days": 7,
        "clamped_from": None,
    }
    assert m["sha256"] == storage.sha256_hex(part.data) and m["size"] == len(part.data)
    assert m["meta"] == {"as_of": "2026-03-01T02:00:00Z", "method": "sum"}
    cite = "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
    assert m["citation"] == f"Derived from: {cite}"
    assert (m["license"], m["caveats"]) == (LICENSE, CAVEATS)
    assert m["inputs"] == [
        {
            "dataset": "rankings-daily",
            "partition": rankings_daily.partition_key(d),
            "window": {"start": d.isoformat(), "end": d.isoformat()},
            "sha256": p.sha256,
            "row_count": 3,
            "as_of": "2026-03-01T02:00:00Z",
            "citation": cite,
        }
        for d, p in zip(days, inputs, strict=True)
    ]
    assert lake.read_records(part) == list(derived("x", 1).records)


def test_a_rerun_with_the_same_data_touches_nothing(base: ObjectStoragePath) -> None:
    first = lake.land_partitions(base, "weekly-share", [derived("w/a", 1), derived("w/b", 1)])
    before = {key: (files(base / key), stamps(base / key)) for key in ("w/a", "w/b")}
    again = lake.land_partitions(base, "weekly-share", [derived("w/a", 1), derived("w/b", 1)])
    assert [p.status for p in first] == ["created", "created"]
    assert [p.status for p in again] == ["unchanged", "unchanged"]
    assert {key: (files(base / key), stamps(base / key)) for key in ("w/a", "w/b")} == before


def test_changed_data_is_restated_with_previous_sha256(base: ObjectStoragePath) -> None:
    [old] = lake.land_partitions(base, "weekly-share", [derived("w/a", 1)])
    [new] = lake.land_partitions(base, "weekly-share", [derived("w/a", 2)])
    assert (new.status, new.previous_sha256) == ("restated", old.sha256)
    part = lake.read_partition(base / "w/a")
    assert (
        part.manifest["previous_sha256"] == old.sha256 and part.sha256 == new.sha256 != old.sha256
    )
    assert lake.read_records(part)[0]["tokens"] == 10**18 + 2


def test_a_failure_before_the_commit_leaves_every_previous_partition_as_it_was(
    base: ObjectStoragePath,
) -> None:
    lake.land_partitions(base, "weekly-share", [derived("w/a", 1), derived("w/b", 1)])
    before = {key: files(base / key) for key in ("w/a", "w/b")}
    broken = lake.DerivedPartition(
        "w/b", [{"tokens": object()}]
    )  # not serialisable: fails while staging
    with pytest.raises(TypeError):
        lake.land_partitions(base, "weekly-share", [derived("w/a", 2), broken, derived("w/c", 2)])
    assert {key: files(base / key) for key in ("w/a", "w/b")} == before  # no _pending-* left either
    assert not (base / "w/c").exists()


def test_a_failure_mid_commit_leaves_the_rest_as_it_was(
    base: ObjectStoragePath, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.land_partitions(base, "weekly-share", [derived("w/a", 1), derived("w/b", 1)])
    old_b = files(base / "w/b")
    real_commit = storage.commit_partition

    def crash_on_b(staged: storage.StagedPartition, manifest: dict) -> None:
        if staged.key == "w/b":
            raise OSError("disk full")
        real_commit(staged, manifest)

    monkeypatch.setattr(storage, "commit_partition", crash_on_b)  # a fault that cannot be made real
    with pytest.raises(OSError, match="disk full"):
        lake.land_partitions(base, "weekly-share", [derived("w/a", 2), derived("w/b", 2)])
    assert lake.read_records(base / "w/a")[0]["tokens"] == 10**18 + 2  # committed before the fault
    # w/b keeps its data and manifest; readers ignore the staged file its interrupted commit left,
    # and the next run removes it
    after = files(base / "w/b")
    assert {k: v for k, v in after.items() if not k.startswith("_pending-")} == old_b
    assert lake.read_records(base / "w/b")[0]["tokens"] == 10**18 + 1
    monkeypatch.undo()
    [again] = lake.land_partitions(base, "weekly-share", [derived("w/b", 1)])
    assert again.status == "unchanged" and files(base / "w/b") == old_b


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda b: lake.land_partitions(b, "rankings-daily", [derived("w/a", 1)]),
            "fetched from OpenRouter",
        ),
        (
            lambda b: lake.land_partitions(b, "Weekly Share", [derived("w/a", 1)]),
            "not a plain name",
        ),
        (
            lambda b: lake.land_partitions(b, "w", [derived("../a", 1)]),
            "relative path of plain names",
        ),
        (
            lambda b: lake.land_partitions(b, "w", [derived("w/_a", 1)]),
            "relative path of plain names",
        ),
        (
            lambda b: lake.land_partitions(b, "w", [derived("w/a", 1), derived("w/a", 2)]),
            "given twice",
        ),
        (
            lambda b: lake.land_partitions(b, "w", [derived("w/a", 1)], format="parquet"),
            "needs columns",
        ),
        (
            lambda b: lake.land_partitions(b, "w", [derived("w/a", 1)], format="csv"),
            "not supported",
        ),
        (lambda b: lake.land_partitions("relative/dir", "w", [derived("w/a", 1)]), "has no scheme"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    base: ObjectStoragePath, call, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call(base)
    assert not Path(base.path).exists()


def test_the_operators_land_through_the_same_path(base: ObjectStoragePath) -> None:
    """Landing (operators) is a Batch of lake.land: one staging and commit path for every dataset."""
    from airflow_provider_openrouter.lake.land import Batch
    from airflow_provider_openrouter.operators.base import Landing

    assert issubclass(Landing, Batch)
    manifest = json.loads((write(base / "r", 1).directory / "_manifest.json").read_bytes())
    assert "inputs" not in manifest and manifest["request"]["path"] == "/datasets/rankings-daily"
