"""Backfills at quota scale: a spent daily quota mid-backfill, a restated day, a damaged chunk
cache, concurrent runs of adjacent days. Real operators, real HTTP to the emulator, real object
store (local files); ``dag.test`` (metadata DB, triggers run inline) where Airflow's part matters.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.lake.chunk_cache import CACHE_DIR, decode_entry
from airflow_provider_openrouter.testing import Emulator, dataset

from .conftest import classify, days, midnight, run_inline

pytestmark = pytest.mark.integration

UTC = timezone.utc
EMULATOR_KEY = "sk-or-emulator"
ROOT = Path(__file__).resolve().parents[2]

DAG_TEMPLATE = """
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.operators.rankings import AppRankingsOperator, RankingsDailyOperator

LAKE = {lake!r}
CONN = {conn!r}

with DAG({dag_id!r}, schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
         start_date=datetime(2025, 1, 1, tzinfo=timezone.utc), catchup=False, default_args={{"retries": 0}}):
{tasks}
"""


def expected_jsonl(day: date, version: int = 0) -> bytes:
    """The emulator's rows of ``day`` in the pinned JSONL layout (integer counts, API order)."""
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
        for r in dataset.rankings_daily_rows(day, version)
    )


def partition(lake: Path, day: date) -> storage.CommittedPartition:
    committed = storage.read_partition(
        ObjectStoragePath(f"{lake.as_uri()}/rankings_daily/date={day.isoformat()}")
    )
    assert committed is not None, f"no partition for {day}"
    return committed


def dag_file(
    write: Callable[[str, str], Path], dag_id: str, lake: Path, conn: str, tasks: str
) -> str:
    body = "\n".join("    " + line for line in textwrap.dedent(tasks).strip().splitlines())
    write(dag_id, DAG_TEMPLATE.format(lake=lake.as_uri(), conn=conn, dag_id=dag_id, tasks=body))
    return dag_id


def rankings_requests(emulator: Emulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests if r["path"].endswith("/rankings-daily")]


# --------------------------------------------------------------------------- (a) quota mid-backfill
class ClockStartsAtFirst429(threading.Thread):
    """Keeps the emulator's clock frozen until the first 429, then lets it run in real time,
    so the API's ``Retry-After`` (seconds to its midnight) is the real wait until the quota renews."""

    def __init__(self, emulator: Emulator, frozen_at: datetime) -> None:
        super().__init__(daemon=True, name="emulator-clock")
        self.emulator, self.frozen_at = emulator, frozen_at
        self.stopping = threading.Event()
        self.first_429: float | None = None

    def run(self) -> None:
        while not self.stopping.wait(0.02):
            if self.first_429 is None:
                if self.emulator.request_count(status=429):
                    self.first_429 = time.monotonic()
                continue
            self.emulator.set_now(
                self.frozen_at + timedelta(seconds=time.monotonic() - self.first_429)
            )


@pytest.fixture
def quota_clock(
    openrouter_emulator_factory: Callable[..., Emulator],
) -> Iterator[ClockStartsAtFirst429]:
    frozen_at = datetime(2026, 3, 1, 23, 59, 58, tzinfo=UTC)
    emulator = openrouter_emulator_factory(
        rpm=None, daily_limit=5, retry_after="seconds", now=frozen_at
    )
    clock = ClockStartsAtFirst429(emulator, frozen_at)
    clock.start()
    yield clock
    clock.stopping.set()
    clock.join(5)


def test_quota_spent_mid_backfill_defers_until_the_api_says_then_finishes(
    quota_clock: ClockStartsAtFirst429,
    openrouter_conn: Callable[..., str],
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    emulator = quota_clock.emulator
    conn = openrouter_conn(emulator)
    lake = tmp_path / "lake"
    dag_id = dag_file(
        write_dag,
        "quota_mid_backfill",
        lake,
        conn,
        """
        rankings = RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)
        apps = AppRankingsOperator(task_id="apps", output_uri=LAKE, openrouter_conn_id=CONN, sort="popular", max_apps=50)
        rankings >> apps
    """,
    )
    backfill = days(
        date(2025, 7, 1), date(2025, 7, 4)
    )  # 8 requests; the quota allows 5 per emulator day
    results, durations = [], []
    for day in backfill:
        started = time.monotonic()
        results.append(run_dag(dag_id, midnight(day + timedelta(days=1))))  # lands [day, day+1)
        durations.append(time.monotonic() - started)

    for day, result in zip(backfill, results):
        assert result.state == "success" and result.task_states == {
            "rankings": "success",
            "apps": "success",
        }, (day, result)
        assert partition(lake, day).data == expected_jsonl(day)
        assert (
            lake
            / f"app_rankings/sort=popular/category=all/subcategory=all/window={day}_{day}/_manifest.json"
        ).exists()

    log = emulator.requests
    statuses = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in log]
    # the 6th request (run 3's apps) was refused once: no hot retry loop, no second refusal
    assert [s for _, s in statuses] == [200] * 5 + [429] + [200] * 3, statuses
    refused = log[5]
    assert refused["path"].endswith("/app-rankings") and refused["time"].startswith(
        "2026-03-01T23:59:58"
    )
    # the retry came only after the API's Retry-After (2 s) had passed: on the emulator's new day
    retried = datetime.fromisoformat(log[6]["time"])
    assert log[6]["path"].endswith("/app-rankings") and log[6]["params"] == refused["params"]
    assert retried >= datetime(2026, 3, 2, tzinfo=UTC), log[6]
    assert durations[2] >= 2.0, durations  # run 3 waited, runs without a refusal did not
    out = capfd.readouterr()
    assert "daily request quota is exhausted" in out.out + out.err
    assert "Deferring until" in out.out + out.err


# --------------------------------------------------------------------------- (b) restatement
def test_restated_day_inside_the_lookback_is_rewritten_final_days_come_from_the_cache(
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    write_dag: Callable[[str, str], Path],
    run_dag: Callable[..., Any],
    tmp_path: Path,
) -> None:
    emulator = openrouter_emulator_factory(
        rpm=None, daily_limit=None, now=datetime(2026, 3, 1, 2, tzinfo=UTC)
    )
    conn = openrouter_conn(emulator)
    lake = tmp_path / "lake"
    dag_id = dag_file(
        write_dag,
        "restated_day",
        lake,
        conn,
        """
        RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN,
                              restatement_days=7, cache_fresh_for=timedelta(0))
    """,
    )
    # as_of 2026-03-01T02:00Z with restatement_days=7: days up to 2026-02-21 are final
    final, young = (
        days(date(2026, 2, 18), date(2026, 2, 21)),
        days(date(2026, 2, 22), date(2026, 2, 25)),
    )
    restated = date(2026, 2, 24)

    def backfill() -> dict[date, tuple[Any, int]]:
        out = {}
        for day in final + young:
            before = len(rankings_requests(emulator))
            result = run_dag(dag_id, midnight(day + timedelta(days=1)))  # lands [day, day+1)
            assert result.state == "success", result
            out[day] = (result, len(rankings_requests(emulator)) - before)
        return out

    first = backfill()
    # one chunk fetch serves every final day; each young day is refetched (fresh_for=0)
    assert [first[d][1] for d in final] == [1, 0, 0, 0]
    assert [first[d][1] for d in young] == [1, 1, 1, 1]
    before = {day: partition(lake, day) for day in final + young}
    stats = {day: (lake / f"rankings_daily/date={day}/data.jsonl").stat() for day in final + young}

    emulator.restate(restated)
    emulator.restate(
        final[0]
    )  # a restatement of a final day is not looked for: the cache is trusted
    second = backfill()
    assert [second[d][1] for d in final] == [0, 0, 0, 0], "final days must be served from the cache"
    assert [second[d][1] for d in young] == [1, 1, 1, 1]
    for day in final + young:
        summary = second[day][0].xcom("rankings")
        now = partition(lake, day)
        if day == restated:
            assert now.data == expected_jsonl(day, version=1) != before[day].data
            assert now.manifest["previous_sha256"] == before[day].sha256 != now.sha256
            assert summary["restated"] == [f"rankings_daily/date={day}"]
        else:
            assert now.data == before[day].data == expected_jsonl(day)
            assert now.manifest == before[day].manifest, f"{day} must not be rewritten"
            st = (lake / f"rankings_daily/date={day}/data.jsonl").stat()
            assert (st.st_ino, st.st_mtime_ns) == (stats[day].st_ino, stats[day].st_mtime_ns)
            assert summary["restated"] == [] and summary["partitions"]["unchanged"] == 1
    for request in rankings_requests(emulator):
        assert (request["params"]["start_date"], request["params"]["end_date"]) == (
            "2026-01-01",
            "2026-12-31",
        )


# --------------------------------------------------------------------------- (c) damaged cache
def _reencoded(raw: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    envelope = json.loads(raw)
    change(envelope)
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def _bump_tokens(envelope: dict[str, Any]) -> None:
    row = envelope["body"]["data"][60]
    row[2] = str(int(row[2]) + 1000)  # plausible numbers, checksum left as it was


def _older_format(envelope: dict[str, Any]) -> None:
    # what an earlier provider version might have kept: the API payload without the envelope
    envelope.clear()
    envelope.update(
        {
            "meta": {
                "as_of": "2026-03-01T02:00:00Z",
                "start_date": "2025-01-01",
                "end_date": "2025-12-31",
            },
            "data": [{"date": "2025-06-01", "model_permaslug": "x/y", "total_tokens": "1"}],
        }
    )


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda raw: raw[: len(raw) // 2],
    "empty": lambda raw: b"",
    "not-json": lambda raw: b"\x00\xff" + raw[10:],
    "older-format-number": lambda raw: _reencoded(raw, lambda e: e.update(format=0)),
    "newer-format-number": lambda raw: _reencoded(raw, lambda e: e.update(format=99)),
    "older-format-layout": lambda raw: _reencoded(raw, _older_format),
    "numbers-changed": lambda raw: _reencoded(raw, _bump_tokens),
    "rows-dropped": lambda raw: _reencoded(raw, lambda e: e["body"]["data"].pop()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_or_foreign_cache_entry_is_refetched_never_trusted(
    damage: str,
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator

    caplog.set_level(
        logging.ERROR, logger="airflow_provider_openrouter.runtime"
    )  # no Variables here
    emulator = openrouter_emulator_factory(
        rpm=None, daily_limit=None, now=datetime(2026, 3, 1, 2, tzinfo=UTC)
    )
    conn = openrouter_conn(emulator)
    lake = tmp_path / "lake"
    op = RankingsDailyOperator(
        task_id="rankings", output_uri=lake.as_uri(), openrouter_conn_id=conn
    )
    run_inline(op, date(2025, 6, 1))
    entries = list((lake / CACHE_DIR).glob("chunk=*/response.json"))
    assert [p.parent.name for p in entries] == ["chunk=2025-01-01_2025-12-31"]
    run_inline(op, date(2025, 6, 2))
    assert len(rankings_requests(emulator)) == 1  # the healthy entry is used

    path = entries[0]
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    day = date(
        2025, 1, 2
    )  # row 60 of the chunk belongs to this day: "numbers-changed" would show here
    summary = run_inline(op, day)
    assert len(rankings_requests(emulator)) == 2, "the damaged entry must be refetched"
    assert summary["requests"] == 1
    assert partition(lake, day).data == expected_jsonl(day)
    out = capfd.readouterr()  # the operator's own log says where the rows came from
    assert f"Fetched chunk=2025-01-01_2025-12-31 for {day}..{day}" in out.out + out.err
    healed = decode_entry(path.read_bytes(), path.parent.name)  # replaced by the refetch
    assert healed.result.meta.end_date == date(2025, 12, 31) and len(healed.result.rows) > 18000
    run_inline(op, date(2025, 1, 3))
    assert len(rankings_requests(emulator)) == 2  # and the repaired entry serves the next run


# --------------------------------------------------------------------------- (d) concurrency
WORKER = textwrap.dedent("""
    import json, sys, time
    from datetime import date
    from pathlib import Path
    from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator
    from tests.backfill.conftest import run_inline

    lake, conn, day, go = sys.argv[1], sys.argv[2], date.fromisoformat(sys.argv[3]), Path(sys.argv[4])
    op = RankingsDailyOperator(task_id="rankings_daily", output_uri=lake, openrouter_conn_id=conn)
    (go.parent / f"ready-{day}").touch()
    while not go.exists():
        time.sleep(0.005)
    summary = run_inline(op, day)
    print(json.dumps({"day": str(day), "requests": summary["requests"], "written": summary["partitions_written"]}))
""")


def test_concurrent_runs_of_adjacent_days_fetch_the_chunk_once(
    openrouter_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
) -> None:
    emulator = openrouter_emulator_factory(
        rpm=30, daily_limit=500, now=datetime(2026, 3, 1, 2, tzinfo=UTC)
    )
    emulator.inject(
        "slow", times=1, path="/rankings-daily", seconds=1.5
    )  # the fetcher holds the lease a while
    lake = tmp_path / "lake"
    gate = tmp_path / "gate"
    gate.mkdir()
    go = gate / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "AIRFLOW_CONN_OPENROUTER_SHARED": json.dumps(
            {"conn_type": "openrouter", "password": EMULATOR_KEY, "host": emulator.base_url}
        ),
    }
    adjacent = days(date(2025, 6, 1), date(2025, 6, 4))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                lake.as_uri(),
                "openrouter_shared",
                day.isoformat(),
                str(go),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for day in adjacent
    ]
    try:
        deadline = time.monotonic() + 90
        while len(list(gate.glob("ready-*"))) < len(adjacent):
            assert all(p.poll() is None for p in procs), [
                p.communicate()[1][-2000:] for p in procs if p.poll() is not None
            ]
            assert time.monotonic() < deadline, "the worker processes did not get ready"
            time.sleep(0.05)
        go.touch()  # all of them miss the cache at the same moment
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err[-3000:]
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait(5)

    chunks = [r for r in emulator.requests if classify(r) == "chunk"]
    assert len(chunks) == 1 and chunks[0]["status"] == 200, emulator.requests
    assert len(emulator.requests) == 1
    assert sorted(o["requests"] for o in outcomes) == [0, 0, 0, 1]
    assert all(o["written"] == 1 for o in outcomes)
    for day in adjacent:
        assert partition(lake, day).data == expected_jsonl(day)
    assert not list((lake / CACHE_DIR).glob("lease-*")), "the lease must be released"
