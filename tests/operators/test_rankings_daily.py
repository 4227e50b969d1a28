"""RankingsDailyOperator in real DAG runs (dag.test, metadata DB) against the emulator over loopback."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import dataset

from .conftest import Env

pytestmark = pytest.mark.integration

EMULATOR_KEY = "sk-or-emulator"

TASK = 'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)'


def expected_jsonl(day: date, version: int = 0) -> bytes:
    """The API's rows for the day, as the pinned JSONL layout: integer counts, API order."""
    rows = dataset.rankings_daily_rows(day, version)
    return b"".join(
        json.dumps(
            {
                "date": r["date"],
                "model_permaslug": r["model_permaslug"],
                "total_tokens": int(r["total_tokens"]),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        + b"\n"
        for r in rows
    )


def partition(env: Env, day: str) -> storage.CommittedPartition:
    committed = storage.read_partition(ObjectStoragePath(f"{env.uri}/rankings_daily/date={day}"))
    assert committed is not None, f"no partition for {day}"
    return committed


def api_windows(env: Env) -> list[tuple[str, str]]:
    return [
        (r["params"]["start_date"], r["params"]["end_date"])
        for r in env.emulator.requests
        if r["path"].endswith("/rankings-daily")
    ]


def test_one_day_run_lands_exactly_its_day(env: Env, capfd: pytest.CaptureFixture[str]) -> None:
    env.dag(TASK)
    result = env.run("2025-07-05")
    assert result.task_states == {"rankings": "success"}
    assert api_windows(env) == [("2025-07-04", "2025-07-04")]
    assert sorted(env.files()) == [
        "rankings_daily/date=2025-07-04/_manifest.json",
        "rankings_daily/date=2025-07-04/data.jsonl",
    ]
    committed = partition(env, "2025-07-04")
    assert committed.data == expected_jsonl(date(2025, 7, 4))
    big = max(json.loads(line)["total_tokens"] for line in committed.data.splitlines())
    assert isinstance(big, int) and big > 2**53  # exact, never a float
    m = committed.manifest
    assert m["dataset"] == "rankings-daily" and m["row_count"] == 51 and m["format"] == "jsonl"
    assert m["request"] == {
        "path": "/datasets/rankings-daily",
        "params": [{"start_date": "2025-07-04", "end_date": "2025-07-04"}],
    }
    assert m["meta"] == {
        "as_of": "2026-03-01T02:00:00Z",
        "start_date": "2025-07-04",
        "end_date": "2025-07-04",
        "version": "v1",
    }
    assert (
        m["citation"] == "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z."
    )
    assert (
        m["window"]["start"] == m["window"]["end"] == "2025-07-04" and m["previous_sha256"] is None
    )

    summary = result.xcom("rankings")
    assert summary["window"] == {
        "start": "2025-07-04",
        "end": "2025-07-04",
        "days": 1,
        "clamped_from": None,
    }
    assert (summary["as_of"], summary["requests"], summary["row_count"]) == (
        "2026-03-01T02:00:00Z",
        1,
        51,
    )
    assert summary["partitions"]["created"] == 1 and summary["partitions_written"] == 1
    assert result.asset_events == [
        {
            "uri": f"{env.uri}/rankings_daily",
            "task_id": "rankings",
            "extra": {
                "dataset": "rankings-daily",
                "window": {"start": "2025-07-04", "end": "2025-07-04"},
                "as_of": "2026-03-01T02:00:00Z",
                "row_count": 51,
            },
        }
    ]
    logs = capfd.readouterr()
    text = logs.out + logs.err
    assert (
        "Landing OpenRouter rankings-daily for 2025-07-04..2025-07-04 (1 day(s), 1 piece(s))"
        in text
    )
    assert (
        f"Wrote 1 of 1 partition(s) under {env.uri} (created 1); 51 row(s); 1 request(s) to OpenRouter (0 answered 429)."
        in text
    )
    assert "Source: OpenRouter (openrouter.ai/rankings), as of 2026-03-01T02:00:00Z." in text
    assert EMULATOR_KEY not in text
    assert all(EMULATOR_KEY.encode() not in body for body in env.files().values())
    assert EMULATOR_KEY not in json.dumps(summary)


def test_multi_day_interval_is_one_request_and_one_partition_per_day(env: Env) -> None:
    env.dag(TASK, schedule="weekly")
    result = env.run("2025-07-08")
    assert result.state == "success"
    assert api_windows(env) == [("2025-07-01", "2025-07-07")]
    days = [date(2025, 7, 1) + timedelta(days=i) for i in range(7)]
    for d in days:
        committed = partition(env, d.isoformat())
        assert committed.data == expected_jsonl(d)
        assert committed.manifest["window"] == {
            "start": d.isoformat(),
            "end": d.isoformat(),
            "days": 1,
            "clamped_from": None,
        }
        assert committed.manifest["run_window"]["days"] == 7
    assert len(env.files()) == 14
    assert result.xcom("rankings")["row_count"] == 7 * 51


def test_zero_length_interval_of_plain_daily_schedule_is_the_day_ending_at_the_logical_date(
    env: Env,
) -> None:
    env.dag(TASK, schedule="trigger")
    result = env.run("2025-07-05")
    assert result.state == "success"
    assert api_windows(env) == [("2025-07-04", "2025-07-04")]
    assert partition(env, "2025-07-04").data == expected_jsonl(date(2025, 7, 4))


def test_interval_straddling_the_floor_is_clamped_and_says_so(env: Env) -> None:
    env.dag(TASK, schedule="weekly")
    result = env.run("2025-01-03")  # [2024-12-27, 2025-01-03)
    assert result.state == "success"
    assert api_windows(env) == [("2025-01-01", "2025-01-02")]
    assert sorted({name.split("/")[1] for name in env.files()}) == [
        "date=2025-01-01",
        "date=2025-01-02",
    ]
    manifest = partition(env, "2025-01-01").manifest
    assert manifest["run_window"] == {
        "start": "2025-01-01",
        "end": "2025-01-02",
        "days": 2,
        "clamped_from": "2024-12-27",
    }
    assert result.xcom("rankings")["window"]["clamped_from"] == "2024-12-27"
    assert partition(env, "2025-01-01").data == expected_jsonl(
        date(2025, 1, 1)
    )  # a day without an `other` row


def test_interval_entirely_before_the_floor_skips_without_a_request(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(TASK, schedule="weekly")
    result = env.run("2024-12-20")
    assert result.task_states == {"rankings": "skipped"}
    assert env.emulator.requests == [] and not env.lake.exists()
    logs = capfd.readouterr()
    assert (
        "Skipping: the whole window lies before 2025-01-01, the first day of OpenRouter's datasets"
        in logs.out + logs.err
    )


def test_400_day_interval_is_fetched_in_two_requests_newest_first(env: Env) -> None:
    env.dag(TASK, schedule="400d")
    result = env.run("2026-03-01")  # [2025-01-25, 2026-03-01): 400 days
    assert result.state == "success"
    assert api_windows(env) == [("2026-01-26", "2026-02-28"), ("2025-01-25", "2026-01-25")]
    files = env.files()
    assert len(files) == 800
    assert all(
        f"rankings_daily/date={d}/_manifest.json" in files
        for d in ("2025-01-25", "2026-01-25", "2026-01-26", "2026-02-28")
    )
    early, late = partition(env, "2025-06-01").manifest, partition(env, "2026-02-01").manifest
    assert early["request"]["params"] == [{"start_date": "2025-01-25", "end_date": "2026-01-25"}]
    assert late["request"]["params"] == [{"start_date": "2026-01-26", "end_date": "2026-02-28"}]
    assert partition(env, "2025-10-10").data == expected_jsonl(date(2025, 10, 10))
    summary = result.xcom("rankings")
    assert (summary["partition_count"], summary["requests"], summary["window"]["days"]) == (
        400,
        2,
        400,
    )
    assert len(json.dumps(summary)) < 2000  # a summary, not the rows


def test_rerun_is_byte_identical_and_touches_nothing(env: Env) -> None:
    env.dag(TASK, schedule="weekly")
    env.run("2025-07-08")
    before_files, before_inodes = env.files(), env.inodes()
    result = env.run("2025-07-08")
    assert result.state == "success"
    assert env.files() == before_files and env.inodes() == before_inodes
    summary = result.xcom("rankings")
    assert (
        summary["partitions"]["unchanged"] == 7
        and summary["partitions_written"] == 0
        and summary["restated"] == []
    )


def test_restatement_replaces_the_day_and_records_the_previous_sha256(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(TASK, schedule="weekly")
    env.run("2025-07-08")
    old = partition(env, "2025-07-03")
    before = env.inodes()
    env.emulator.restate("2025-07-03")
    result = env.run("2025-07-08")
    assert result.state == "success"
    new = partition(env, "2025-07-03")
    assert new.data == expected_jsonl(date(2025, 7, 3), version=1) != old.data
    assert new.manifest["previous_sha256"] == old.sha256
    after = env.inodes()
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {
        "rankings_daily/date=2025-07-03/data.jsonl",
        "rankings_daily/date=2025-07-03/_manifest.json",
    }
    assert set(after) == set(before)
    summary = result.xcom("rankings")
    assert (
        summary["restated"] == ["rankings_daily/date=2025-07-03"]
        and summary["partitions"]["unchanged"] == 6
    )
    logs = capfd.readouterr()
    assert (
        f"Restated upstream: rankings_daily/date=2025-07-03 changed (sha256 {old.sha256} -> {new.sha256})"
        in logs.out + logs.err
    )


def test_templated_window_overrides_the_interval(env: Env) -> None:
    env.dag(
        'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False, '
        'window_start="{{ macros.ds_add(ds, -3) }}", window_end="{{ macros.ds_add(ds, -1) }}")'
    )
    result = env.run("2025-07-10")
    assert result.state == "success"
    assert api_windows(env) == [("2025-07-07", "2025-07-09")]


def test_parquet_format_writes_exact_types(env: Env) -> None:
    import io

    import pyarrow.parquet as pq

    env.dag(
        'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False, format="parquet")'
    )
    assert env.run("2025-07-05").state == "success"
    committed = partition(env, "2025-07-04")
    assert (
        committed.data_file == "data.parquet"
        and committed.manifest["schema"]["total_tokens"] == "int64"
    )
    table = pq.read_table(io.BytesIO(committed.data), use_threads=False)
    assert [json.dumps(row, default=str, separators=(",", ":")) for row in table.to_pylist()] == [
        line.decode() for line in expected_jsonl(date(2025, 7, 4)).splitlines()
    ]
