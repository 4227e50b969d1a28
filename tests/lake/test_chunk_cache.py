"""chunk_cache: aligned chunks, trust rules, damaged entries, single flight (local object store)."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.api.datasets.rankings_daily import parse_rankings_daily
from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.lake.chunk_cache import (
    RankingsChunkCache,
    decode_entry,
    encode_entry,
    split_by_year,
    trusted_until,
)
from airflow_provider_openrouter.windows.intervals import Window

UTC = timezone.utc
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def result_for(start: date, end: date, as_of: datetime) -> Any:
    rows, day = [], start
    while day <= end:
        rows += [
            {
                "date": day.isoformat(),
                "model_permaslug": "a/model",
                "total_tokens": str(2**60 + day.toordinal()),
            },
            {"date": day.isoformat(), "model_permaslug": "other", "total_tokens": "7"},
        ]
        day += timedelta(days=1)
    payload = {
        "data": rows,
        "meta": {
            "as_of": as_of.isoformat().replace("+00:00", "Z"),
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "version": "v1",
            "extra": "kept",
        },
    }
    return parse_rankings_daily(payload, Window(start, date(start.year, 12, 31)))


@pytest.fixture
def base(tmp_path: Path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/lake")


def make_cache(base: ObjectStoragePath, now: datetime = NOW, **kwargs: Any) -> RankingsChunkCache:
    return RankingsChunkCache(
        base, clock=lambda: now, settle_seconds=0.05, poll_seconds=0.05, **kwargs
    )


def test_split_by_year() -> None:
    parts = split_by_year(Window(date(2025, 12, 30), date(2027, 1, 2)))
    assert parts == [
        Window(date(2025, 12, 30), date(2025, 12, 31)),
        Window(date(2026, 1, 1), date(2026, 12, 31)),
        Window(date(2027, 1, 1), date(2027, 1, 2)),
    ]


def test_trusted_until() -> None:
    assert trusted_until(datetime(2026, 3, 10, 2, tzinfo=UTC), 7) == date(2026, 3, 2)
    assert trusted_until(datetime(2026, 3, 10, 2, tzinfo=UTC), 0) == date(2026, 3, 9)


def test_entry_round_trip_is_exact(base: ObjectStoragePath) -> None:
    result = result_for(date(2025, 1, 1), date(2025, 12, 31), NOW)
    entry = decode_entry(encode_entry(result, NOW), "x")
    assert entry.result.rows == result.rows and entry.result.meta.raw == result.meta.raw
    assert entry.result.rows[0].total_tokens > 2**60 and entry.fetched_at == NOW


@pytest.mark.parametrize(
    "first,last",
    [
        (date(2025, 1, 1), date(2025, 1, 1)),  # the first stored day
        (date(2025, 6, 14), date(2025, 6, 14)),
        (date(2025, 6, 10), date(2025, 6, 20)),
        (date(2025, 12, 31), date(2025, 12, 31)),  # the last stored day
        (date(2025, 3, 1), date(2025, 3, 31)),  # around the gap of 2025-03-05..07
        (date(2025, 3, 5), date(2025, 3, 7)),  # only missing days: no rows
        (date(2024, 12, 31), date(2025, 1, 2)),  # reaching outside the chunk
    ],
)
def test_a_run_reads_exactly_the_rows_of_its_days(first: date, last: date) -> None:
    result = result_for(date(2025, 1, 1), date(2025, 12, 31), NOW)
    gap = (date(2025, 3, 5), date(2025, 3, 7))
    rows = tuple(r for r in result.rows if not gap[0] <= r.date <= gap[1])
    kept = type(result)(meta=result.meta, rows=rows, requested=result.requested)
    entry = decode_entry(encode_entry(kept, NOW), "x", Window(first, last))
    assert entry.result.rows == tuple(r for r in rows if first <= r.date <= last)
    assert entry.result.meta == result.meta


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-20],
        lambda b: b.replace(b'"format":2', b'"format":0'),
        lambda b: b.replace(b'"other","7"', b'"other","8"', 1),
        lambda b: b"",
        lambda b: b.replace(b'"other"', b'"a/model"'),
        lambda b: b.replace(b'"sha256":"', b'"sha256":"0'),
        lambda b: b.replace(b'"format":2', b'"format":"2"'),
        lambda b: b.replace(b'"body":{"data":[[', b'"body":{"data":[[1,'),
    ],
)
def test_damaged_or_foreign_entries_are_never_trusted(base: ObjectStoragePath, damage: Any) -> None:
    cache = make_cache(base)
    result = result_for(date(2025, 1, 1), date(2025, 12, 31), NOW)
    name = cache.store(result, NOW)
    path = cache.root / name / "response.json"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InvalidResponseError):
        decode_entry(path.read_bytes(), name)
    assert cache.lookup(Window(date(2025, 5, 1), date(2025, 5, 1))) is None
    calls = []
    entry, fetched = cache.get_or_fetch(
        Window(date(2025, 5, 1), date(2025, 5, 1)), lambda: calls.append(1) or result
    )
    assert fetched and calls == [1] and entry.result.rows == result.rows
    assert (
        cache.lookup(Window(date(2025, 5, 1), date(2025, 5, 1))) is not None
    )  # repaired by the refetch


def test_final_days_are_trusted_young_days_only_while_fresh(base: ObjectStoragePath) -> None:
    as_of = datetime(2026, 3, 10, 2, tzinfo=UTC)
    make_cache(base).store(result_for(date(2026, 1, 1), date(2026, 3, 9), as_of), as_of)
    later = make_cache(base, now=as_of + timedelta(hours=5), restatement_days=7)
    assert (
        later.lookup(Window(date(2026, 3, 2), date(2026, 3, 2))) is not None
    )  # final: 8 days old at as_of
    assert later.lookup(Window(date(2026, 3, 3), date(2026, 3, 3))) is None  # young and stale
    fresh = make_cache(base, now=as_of + timedelta(minutes=30), restatement_days=7)
    assert fresh.lookup(Window(date(2026, 3, 9), date(2026, 3, 9))) is not None  # young but fresh
    assert fresh.lookup(Window(date(2026, 3, 10), date(2026, 3, 10))) is None  # not in the chunk
    assert fresh.lookup(Window(date(2025, 3, 9), date(2025, 3, 9))) is None  # another year


def test_newer_entry_replaces_older_of_the_same_chunk(base: ObjectStoragePath) -> None:
    cache = make_cache(base)
    cache.store(
        result_for(date(2026, 1, 1), date(2026, 3, 8), NOW - timedelta(days=1)),
        NOW - timedelta(days=1),
    )
    cache.store(result_for(date(2026, 1, 1), date(2026, 3, 9), NOW), NOW)
    names = sorted(p.name for p in cache.root.iterdir() if p.name.startswith("chunk="))
    assert [n for n in names if (cache.root / n / "response.json").exists()] == [
        "chunk=2026-01-01_2026-03-09"
    ]


def test_concurrent_misses_fetch_once(base: ObjectStoragePath) -> None:
    result = result_for(date(2025, 1, 1), date(2025, 12, 31), NOW)
    calls: list[int] = []
    lock = threading.Lock()

    def fetch() -> Any:
        with lock:
            calls.append(1)
        threading.Event().wait(0.3)
        return result

    outcomes: list[bool] = []

    def run(day: int) -> None:
        entry, fetched = make_cache(base).get_or_fetch(
            Window(date(2025, 3, day), date(2025, 3, day)), fetch
        )
        assert entry.result.meta.end_date == date(2025, 12, 31)
        outcomes.append(fetched)

    threads = [threading.Thread(target=run, args=(d,)) for d in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcomes) == 8
    assert len(calls) == 1 and outcomes.count(True) == 1
