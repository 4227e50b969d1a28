"""Restatements converge: the rankings lookback re-verifies landed non-final days on the run's own
request, rewrites exactly the days that changed, and every manifest says honestly whether its numbers
are final. Real DAG runs (``dag.test``: sensor and operator, metadata DB, asset events), real HTTP to
the emulator, real local object store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter.testing import Emulator

from .conftest import days, midnight, run_inline
from .test_quota_and_restatement import dag_file, expected_jsonl, partition, rankings_requests

pytestmark = pytest.mark.integration

UTC = timezone.utc
SINCE_MIDNIGHT = timedelta(minutes=30)


def lake_state(lake: Path) -> dict[str, tuple[int, bytes]]:
    """Every partition file (cache left out): relative path -> (mtime_ns, bytes)."""
    return {
        str(p.relative_to(lake)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(lake.rglob("*"))
        if p.is_file() and not str(p.relative_to(lake)).startswith("_cache")
    }


def manifest(lake: Path, day: date) -> dict[str, Any]:
    return json.loads((lake / f"rankings_daily/date={day}/_manifest.json").read_bytes())


def test_daily_runs_reverify_the_lookback_on_their_one_request_and_finality_follows_the_api_clock(
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
    tmp_path: Path,
) -> None:
    first = date(2026, 2, 10)
    emulator = openrouter_emulator_factory(
        rpm=None, daily_limit=None, now=midnight(first + timedelta(days=1)) + SINCE_MIDNIGHT
    )
    conn = openrouter_conn(emulator)
    lake = tmp_path / "lake"
    dag_id = dag_file(
        write_dag,
        "steady_lookback",
        lake,
        conn,
        """
        from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor
        wait = OpenRouterAsOfSensor(task_id="wait_for_day", openrouter_conn_id=CONN, mode="poke",
                                    poke_interval=0.1, max_wait=0.3)
        rankings = RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN)
        wait >> rankings
    """,
    )

    def run(day: date) -> Any:
        """The scheduled run landing ``day``, half an hour after it ended (the API's clock too)."""
        emulator.set_now(midnight(day + timedelta(days=1)) + SINCE_MIDNIGHT)
        before = len(rankings_requests(emulator))
        result = run_dag(dag_id, midnight(day + timedelta(days=1)))
        assert result.state == "success", result
        return result, len(rankings_requests(emulator)) - before

    restated = first + timedelta(days=1)
    life: list[bool] = []  # the first day's `final` after each run
    for day in days(first, first + timedelta(days=8)):
        if day == first + timedelta(days=4):
            emulator.restate(restated)  # published after the day landed
            untouched = lake_state(lake)
        result, spent = run(day)
        assert spent == 1, (
            f"run of {day}: {spent} rankings-daily requests (steady state is one, the sensor's)"
        )
        life.append(manifest(lake, first)["final"])
        summary = result.xcom("rankings")
        events = [e for e in result.asset_events if e["task_id"] == "rankings"]
        assert len(events) == 1
        if day == first + timedelta(days=4):
            # the restated day is rewritten by the very next run, nothing else is touched
            now = partition(lake, restated)
            assert now.data == expected_jsonl(restated, version=1)
            old = json.loads(untouched[f"rankings_daily/date={restated}/_manifest.json"][1])
            assert now.manifest["previous_sha256"] == old["sha256"] != now.sha256
            assert now.manifest["restated_at"] and now.manifest["final"] is False
            assert summary["restated"] == [f"rankings_daily/date={restated}"]
            assert summary["lookback"]["restated"] == 1
            assert events[0]["extra"]["restated"] is True and events[0]["extra"][
                "restated_days"
            ] == [restated.isoformat()]
            after = lake_state(lake)
            changed = {path for path in untouched if after[path] != untouched[path]}
            assert changed == {
                f"rankings_daily/date={restated}/data.jsonl",
                f"rankings_daily/date={restated}/_manifest.json",
            }
        else:
            assert summary["restated"] == [] and "restated" not in events[0]["extra"]
    # finality over the first day's life: false until a snapshot 7 days after it ended
    assert life == [False] * 7 + [True, True]
    m = manifest(lake, first)
    assert m["final_after"] == "2026-02-18T00:00:00Z" and m["restatement_days"] == 7
    assert m["meta"]["as_of"] == "2026-02-18T00:30:00Z"  # the verification that made it final
    for day in days(first, first + timedelta(days=8)):
        assert partition(lake, day).data == expected_jsonl(day, version=1 if day == restated else 0)

    # unchanged upstream: running the last day again writes nothing at all
    state = lake_state(lake)
    result, _ = run(first + timedelta(days=8))
    assert lake_state(lake) == state
    assert result.xcom("rankings")["partitions_written"] == 0


def test_a_backfill_that_served_young_days_from_a_stale_chunk_converges_on_the_next_run(
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's race, made deterministic: the chunk is fetched, then three days are restated,
    then the rest of the backfill lands them from the (fresh) cached chunk. They are marked
    ``final: false``, and the next day's run, whose lookback covers them, rewrites exactly them."""
    from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator

    caplog.set_level(
        logging.ERROR, logger="airflow_provider_openrouter.runtime"
    )  # no Variables here
    last = date(2026, 2, 27)
    emulator = openrouter_emulator_factory(
        rpm=None, daily_limit=None, now=midnight(last + timedelta(days=1)) + SINCE_MIDNIGHT
    )
    conn = openrouter_conn(emulator)
    lake = tmp_path / "lake"
    op = RankingsDailyOperator(
        task_id="rankings", output_uri=lake.as_uri(), openrouter_conn_id=conn
    )
    backfill = days(date(2026, 2, 1), last)
    restated = backfill[-3:]
    for day in backfill:
        run_inline(op, day)
        if day == backfill[0]:
            for young in restated:
                emulator.restate(young)
    assert len(rankings_requests(emulator)) == 1  # one chunk served the whole backfill
    for day in backfill:
        m = manifest(lake, day)
        assert m["final"] is (day <= date(2026, 2, 20)), (
            day
        )  # as_of 02-28T00:30: days to 02-20 are 7 days old
        assert partition(lake, day).data == expected_jsonl(
            day
        )  # pre-restatement numbers, honestly not final
    before = lake_state(lake)

    emulator.set_now(
        midnight(last + timedelta(days=2)) + timedelta(hours=2)
    )  # the next day, past the cache's hour
    summary = run_inline(op, last + timedelta(days=1))
    assert summary["requests"] == 1
    assert sorted(summary["restated"]) == [f"rankings_daily/date={d}" for d in restated]
    for day in [*backfill, last + timedelta(days=1)]:
        assert partition(lake, day).data == expected_jsonl(
            day, version=1 if day in restated else 0
        )  # converged
    for day in restated:
        assert (
            manifest(lake, day)["previous_sha256"]
            == json.loads(before[f"rankings_daily/date={day}/_manifest.json"][1])["sha256"]
        )
    after = lake_state(lake)
    data_changed = {p for p in before if p.endswith("data.jsonl") and after[p] != before[p]}
    assert data_changed == {f"rankings_daily/date={d}/data.jsonl" for d in restated}
    # the day that turned 7 days old (02-21) gets `final: true` in its manifest only
    assert manifest(lake, date(2026, 2, 21))["final"] is True
    assert (
        after["rankings_daily/date=2026-02-21/data.jsonl"]
        == before["rankings_daily/date=2026-02-21/data.jsonl"]
    )


def test_app_rankings_lookback_is_off_by_default_and_each_recheck_costs_a_request(
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_openrouter.operators import rankings as module
    from airflow_provider_openrouter.operators.rankings import AppRankingsOperator

    caplog.set_level(logging.ERROR, logger="airflow_provider_openrouter.runtime")
    # the runs below are a day apart on the API's clock but seconds apart on this machine's: let the
    # lookback re-check windows written a moment ago (normally it waits an hour: the same backfill)
    monkeypatch.setattr(module, "APP_RECHECK_AFTER", timedelta(0))
    first = date(2026, 2, 10)
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None)
    conn = openrouter_conn(emulator)
    off = AppRankingsOperator(
        task_id="apps", output_uri=(tmp_path / "off").as_uri(), openrouter_conn_id=conn
    )
    on = AppRankingsOperator(
        task_id="apps",
        output_uri=(tmp_path / "on").as_uri(),
        openrouter_conn_id=conn,
        lookback_days=2,
    )
    key = "app_rankings/sort=popular/category=all/subcategory=all/window={0}_{0}/_manifest.json"
    spent: dict[str, list[int]] = {"off": [], "on": []}
    for day in days(first, first + timedelta(days=2)):
        emulator.set_now(midnight(day + timedelta(days=1)) + SINCE_MIDNIGHT)
        if day == first + timedelta(days=2):
            emulator.restate(first)  # the first window's aggregate changes after it landed
        for name, op in (("off", off), ("on", on)):
            before = emulator.request_count("/datasets/app-rankings")
            summary = run_inline(op, day)
            spent[name].append(emulator.request_count("/datasets/app-rankings") - before)
    assert spent == {"off": [1, 1, 1], "on": [1, 2, 3]}  # one request per re-checked window, on top
    stale = json.loads((tmp_path / "off" / key.format(first)).read_bytes())
    fixed = json.loads((tmp_path / "on" / key.format(first)).read_bytes())
    assert stale["previous_sha256"] is None and stale["final"] is False
    assert fixed["previous_sha256"] == stale["sha256"] != fixed["sha256"] and fixed["restated_at"]
    assert summary["restated"] == [key.format(first).rsplit("/", 1)[0]]
    # the unchanged middle window was re-checked but not rewritten
    middle = tmp_path / "on" / key.format(first + timedelta(days=1))
    assert json.loads(middle.read_bytes())["meta"]["as_of"] == "2026-02-12T00:30:00Z"
