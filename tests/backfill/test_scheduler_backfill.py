"""A real backfill through Airflow's own scheduler, against the emulator with its limits on, with a
restatement in the middle of it, then the next day's run.

A private ``AIRFLOW_HOME`` (SQLite metadata DB in WAL mode, LocalExecutor) runs ``airflow api-server
--apps execution`` (the execution API the task processes talk to), ``airflow scheduler`` and
``airflow triggerer`` (for deferrals on a spent quota) as subprocesses, each in its own process
group. ``airflow dags reserialize`` stands in for the dag-processor (one parse, then no more writes
to SQLite during the run); the emulator runs as its own
subprocess (CLI) with the real limits (30 requests/minute, 500/day) and a frozen clock. The DAGs
folder holds a trimmed copy of ``dags/openrouter_daily.py`` (the sensor and ``RankingsDailyOperator``
with the same settings; the app rankings are left out because each one costs a real request at
30/minute). ``airflow backfill create`` with its default flags (10 runs at once, oldest first) then
lands a range of days that crosses a year boundary and ends at the API's last complete day; as soon
as the 2026 chunk has been fetched, OpenRouter restates the three newest days. The test checks:

* every backfill run and task instance succeeded, first try, no retries;
* the requests: one rankings chunk per calendar year and one sensor probe in all (single flight;
  its answer proves every day for the other sensors), so at most 4 rankings-daily requests, as
  ``planner.plan_backfill`` says;
* honest finality: days landed from a snapshot less than ``restatement_days`` after they ended say
  ``final: false`` (the three restated days among them, still with the numbers of the chunk);
* the next day's run (triggered once the API's clock moved on a day) spends one request, the
  sensor's probe, and its lookback converges the lake: every day is byte-identical to a serial
  reference written one day at a time with ``coalesce=False`` against a second emulator holding the
  same restatements; exactly the restated days were rewritten (``previous_sha256``) and listed in
  the run's asset event.

All processes are killed (process groups, then any descendant left) whatever happens.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_openrouter import planner
from airflow_provider_openrouter.lake import storage
from tests.scheduler_stack import (
    VENV_BIN,
    Stack,
    airflow_env,
    emulator_requests,
    free_port,
    query,
    wait_for,
)

from .conftest import classify, days, lake_files, run_inline

pytestmark = pytest.mark.integration

#: 33 daily runs crossing 1 January: two calendar-year chunks.
FIRST, LAST = date(2025, 12, 15), date(2026, 1, 16)
#: The emulator's frozen clock: its last complete day is LAST; days after 2026-01-09 are not final yet.
EMULATOR_NOW = "2026-01-17T00:30:00Z"
#: The next day: the run landing 2026-01-17 starts.
NEXT_NOW = "2026-01-18T00:30:00Z"
NEXT_DAY = LAST + timedelta(days=1)
#: Restated by OpenRouter in the middle of the backfill, right after the 2026 chunk was fetched.
RESTATED = [LAST - timedelta(days=2), LAST - timedelta(days=1), LAST]
DAG_ID = "openrouter_daily_backfill"
CONN_ID = "openrouter_default"
EMULATOR_KEY = "sk-or-emulator"
#: Bounds of the whole test (the suite's budget is 4 minutes on 2 cores).
STARTUP_TIMEOUT = 90.0
BACKFILL_TIMEOUT = 150.0

DAG_SOURCE = '''
"""Trimmed copy of dags/openrouter_daily.py for the scheduler backfill test: sensor + rankings."""
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator
from airflow_provider_openrouter.sensors.as_of import OpenRouterAsOfSensor

with DAG(
    dag_id={dag_id!r},
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=2,
    max_active_tasks=4,
    default_args={{"retries": 0}},
):
    wait_for_day = OpenRouterAsOfSensor(
        task_id="wait_for_day",
        openrouter_conn_id={conn_id!r},
        settle=timedelta(0),
        poke_interval=timedelta(minutes=10),
        max_wait=timedelta(hours=1),
        timeout=timedelta(hours=20),
        mode="reschedule",
    )
    rankings_daily = RankingsDailyOperator(
        task_id="rankings_daily",
        output_uri={lake!r},
        openrouter_conn_id={conn_id!r},
    )
    wait_for_day >> rankings_daily
'''


# --------------------------------------------------------------------------- processes
@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(home, free_port())
    # no scheduled run of "yesterday" (catchup=False) beside the backfill: its probe would be a
    # request the plan does not count, for a day the frozen emulator does not serve
    env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    s = Stack(home, env)
    try:
        yield s
    finally:
        s.stop()


def start_emulator(stack: Stack) -> str:
    return stack.start_emulator("--now", EMULATOR_NOW, "--rpm", "30", "--daily-limit", "500")


def control(base_url: str, name: str, body: dict[str, Any]) -> None:
    import httpx

    root = base_url.rsplit("/api/v1", 1)[0]
    httpx.post(f"{root}/_emulator/{name}", json=body, timeout=10).raise_for_status()


class RestateAfterChunk(threading.Thread):
    """Restates RESTATED as soon as the emulator has answered the 2026 chunk request."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True, name="restater")
        self.base_url = base_url
        self.stopping = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            try:
                log = emulator_requests(self.base_url)
            except Exception:
                continue
            if any(
                e["status"] == 200
                and classify(e) == "chunk"
                and e["params"]["start_date"] == "2026-01-01"
                for e in log
            ):
                for day in RESTATED:
                    control(self.base_url, "restate", {"date": day.isoformat()})
                self.done.set()
                return


# --------------------------------------------------------------------------- the test
def test_backfill_with_default_flags_and_a_restatement_converges_on_the_next_run_at_four_requests(
    stack: Stack,
    tmp_path: Path,
    openrouter_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home, db = stack.home, stack.home / "airflow.db"
    lake = tmp_path / "lake"
    dag_file = home / "dags" / f"{DAG_ID}.py"
    dag_file.write_text(DAG_SOURCE.format(dag_id=DAG_ID, conn_id=CONN_ID, lake=lake.as_uri()))

    base_url = start_emulator(stack)
    stack.env["AIRFLOW_CONN_" + CONN_ID.upper()] = json.dumps(
        {"conn_type": "openrouter", "password": EMULATOR_KEY, "host": base_url}
    )
    migrate = subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env=stack.env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    with sqlite3.connect(
        db
    ) as conn:  # readers (this test's polling included) never block the writer
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

    airflow = str(VENV_BIN / "airflow")
    # The DAG is serialized and the backfill created before the daemons start: SQLite cannot take the
    # CLI's long write transaction while the scheduler writes too ("database is locked" at once, a
    # stale WAL snapshot). With PostgreSQL both may run concurrently; the scheduler's work is the same.
    reserialize = subprocess.run(
        [airflow, "dags", "reserialize"],
        env=stack.env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert reserialize.returncode == 0, reserialize.stdout[-3000:] + reserialize.stderr[-3000:]
    errors = query(db, "SELECT filename, stacktrace FROM import_error")
    assert not errors, f"the DAG file failed to import: {errors}"
    assert query(db, "SELECT is_paused FROM dag WHERE dag_id = ?", DAG_ID) == [(0,)]
    assert query(db, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID)
    create = subprocess.run(
        [
            airflow,
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            FIRST.isoformat(),
            "--to-date",
            LAST.isoformat(),
        ],
        env=stack.env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert create.returncode == 0, create.stdout[-3000:] + create.stderr[-3000:]

    stack.start("api-server", [airflow, "api-server", "--apps", "execution", "--workers", "1"])
    port = int(stack.env["AIRFLOW__API__PORT"])

    def api_up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for("the execution API server", api_up, STARTUP_TIMEOUT, stack)
    stack.start("triggerer", [airflow, "triggerer"])  # for deferrals on 429s / a spent quota
    restater = RestateAfterChunk(base_url)
    restater.start()
    stack.start("scheduler", [airflow, "scheduler"])
    ready = time.monotonic()
    expected_runs = len(days(FIRST, LAST))

    def finished() -> bool:
        states = dict(
            query(db, "SELECT state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY state", DAG_ID)
        )
        if states.get("failed"):
            raise AssertionError(f"backfill runs failed: {states}.\n{stack.tails(60)}")
        return sum(states.values()) == expected_runs and states.get("success", 0) == expected_runs

    try:
        wait_for(
            f"{expected_runs} backfill runs to succeed",
            finished,
            BACKFILL_TIMEOUT,
            stack,
            interval=1.0,
        )
    except AssertionError as exc:
        states = query(
            db, "SELECT state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY state", DAG_ID
        )
        tis = query(
            db,
            "SELECT task_id, state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY 1, 2",
            DAG_ID,
        )
        raise AssertionError(f"run states {states}, task states {tis}\n{exc}") from None
    backfill_seconds = time.monotonic() - ready
    restater.stopping.set()
    restater.join(5)
    assert restater.done.is_set(), "the 2026 chunk was never fetched"

    # -- every run and task instance succeeded, first try, all backfill runs, the right days
    runs = query(
        db, "SELECT run_type, state, data_interval_start FROM dag_run WHERE dag_id = ?", DAG_ID
    )
    assert {(r[0], r[1]) for r in runs} == {("backfill", "success")}
    landed = sorted(datetime.fromisoformat(str(r[2])).date() for r in runs)
    assert landed == days(FIRST, LAST)
    tis = query(db, "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", DAG_ID)
    assert len(tis) == 2 * expected_runs
    assert {(t[0], t[1], t[2]) for t in tis} == {
        ("wait_for_day", "success", 1),
        ("rankings_daily", "success", 1),
    }

    # -- honest finality: as_of 2026-01-17T00:30Z proves days up to 01-09 final (7 days after they ended)
    from airflow.sdk import ObjectStoragePath

    def committed(root: Path, day: date) -> storage.CommittedPartition:
        part = storage.read_partition(
            ObjectStoragePath(f"{root.as_uri()}/rankings_daily/date={day.isoformat()}")
        )
        assert part is not None, (root, day)
        return part

    backfilled = {day: committed(lake, day) for day in days(FIRST, LAST)}
    for day, part in backfilled.items():
        assert part.manifest["final"] is (day <= date(2026, 1, 9)), (day, part.manifest["final"])
        assert part.manifest["meta"]["as_of"] == "2026-01-17T00:30:00Z"

    # -- the request log of the backfill against the planner: at most 4 rankings-daily requests
    from airflow_provider_openrouter.compat import DagBag

    bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    (concurrency,) = query(db, "SELECT max_active_runs FROM backfill WHERE dag_id = ?", DAG_ID)[0]
    assert (
        concurrency == planner.BACKFILL_MAX_ACTIVE_RUNS
    )  # backfill create's default, as the planner assumes
    plan = planner.plan_backfill(
        FIRST, LAST, planner.dag_shape(bag.dags[DAG_ID]), max_active_runs=concurrency
    )
    log = emulator_requests(base_url)
    admitted: dict[str, int] = {}
    for entry in log:
        assert entry["status"] in (200, 429), entry
        if entry["status"] == 200:
            kind = classify(entry)
            admitted[kind] = admitted.get(kind, 0) + 1
    refused = sum(1 for entry in log if entry["status"] == 429)
    proofs = [
        json.loads(v) if isinstance(v, str) else v
        for (v,) in query(
            db,
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'wait_for_day' AND key = 'return_value'",
            DAG_ID,
        )
    ]
    by_proof = {
        p: sum(1 for x in proofs if isinstance(x, dict) and x.get("proof") == p)
        for p in ("probe", "memory")
    }
    report = (
        f"backfill of {expected_runs} days, concurrency {concurrency}: {admitted} admitted, {refused} refused "
        f"(429); plan {plan.requests} (naive {plan.naive}); sensor proofs {by_proof}; "
        f"scheduler time {backfill_seconds:.1f} s"
    )
    print(report)
    chunk_windows = sorted(
        (e["params"]["start_date"], e["params"]["end_date"])
        for e in log
        if e["status"] == 200 and classify(e) == "chunk"
    )
    assert chunk_windows == [("2025-01-01", "2025-12-31"), ("2026-01-01", "2026-12-31")], report
    assert set(admitted) <= {"chunk", "probe"}, report
    assert admitted["chunk"] == plan.requests["rankings-daily (operators)"] == 2, report
    assert 1 <= admitted.get("probe", 0) <= 2, report  # one, unless two sensors raced for the lease
    assert plan.requests["rankings-daily (sensor probes)"] == 1, report
    assert admitted["chunk"] + admitted.get("probe", 0) <= 4, report
    assert by_proof == {
        "probe": admitted.get("probe", 0),
        "memory": expected_runs - admitted.get("probe", 0),
    }, report

    # -- the next day: OpenRouter's clock moves on, the run landing 2026-01-17 starts
    control(base_url, "clock", {"now": NEXT_NOW})
    before_next = len(emulator_requests(base_url))
    # `airflow dags test` runs it with the data interval of that logical date ([01-17, 01-18)), with the
    # real metadata DB (XComs, asset events, Variables); the scheduler stops first (one SQLite writer)
    scheduler = stack.procs["scheduler"]
    os.killpg(scheduler.pid, signal.SIGTERM)
    scheduler.wait(timeout=30)
    del stack.procs["scheduler"]
    stack.run("dags", "test", DAG_ID, f"{NEXT_DAY + timedelta(days=1)}T00:00:00+00:00", timeout=180)
    runs = query(
        db,
        "SELECT run_id, state, data_interval_start FROM dag_run WHERE dag_id = ? AND run_type != 'backfill'",
        DAG_ID,
    )
    assert (
        len(runs) == 1
        and runs[0][1] == "success"
        and str(runs[0][2]).startswith(NEXT_DAY.isoformat())
    ), runs
    run_id = runs[0][0]
    spent = [
        e
        for e in emulator_requests(base_url)[before_next:]
        if e["path"].endswith("/rankings-daily")
    ]
    assert [e["status"] for e in spent] == [200], (
        spent
    )  # one request: the sensor's probe, reused by the operator
    (summary,) = [
        json.loads(v) if isinstance(v, str) else v
        for (v,) in query(
            db,
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'rankings_daily' AND key = 'return_value'",
            DAG_ID,
            run_id,
        )
    ]
    assert summary["window"]["start"] == NEXT_DAY.isoformat() and summary["requests"] == 0, summary
    assert summary["restated"] == [f"rankings_daily/date={d.isoformat()}" for d in RESTATED], (
        summary
    )
    events = query(
        db,
        "SELECT e.extra FROM asset_event e WHERE e.source_dag_id = ? AND e.source_run_id = ?",
        DAG_ID,
        run_id,
    )
    assert len(events) == 1, events
    extra = json.loads(events[0][0]) if isinstance(events[0][0], str) else events[0][0]
    assert extra["restated"] is True and extra["restated_days"] == [
        d.isoformat() for d in RESTATED
    ], extra

    # -- converged: every day equals a serial reference of the API's current answers
    from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator

    reference = openrouter_emulator_factory(
        rpm=None, daily_limit=None, now=datetime.fromisoformat(NEXT_NOW.replace("Z", "+00:00"))
    )
    for day in RESTATED:
        reference.restate(day)
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENROUTER_REFERENCE",
        json.dumps(
            {
                "conn_type": "openrouter",
                "password": EMULATOR_KEY,
                "host": reference.base_url,
                "extra": {"requests_per_minute": 100000},
            }
        ),
    )
    ref_lake = tmp_path / "reference"
    serial = RankingsDailyOperator(
        task_id="rankings_daily",
        output_uri=ref_lake.as_uri(),
        openrouter_conn_id="openrouter_reference",
        coalesce=False,
    )
    # outside a task process the sensors' as_of memory cannot be written: the reference does without it
    caplog.set_level(logging.ERROR, logger="airflow_provider_openrouter.runtime")
    every_day = days(FIRST, NEXT_DAY)
    for day in every_day:
        run_inline(serial, day)
    got, want = lake_files(lake), lake_files(ref_lake)
    expected_files = {
        f"rankings_daily/date={d.isoformat()}/{name}"
        for d in every_day
        for name in ("data.jsonl", "_manifest.json")
    }
    assert set(got) == expected_files, (
        f"missing {sorted(expected_files - set(got))[:5]}, extra {sorted(set(got) - expected_files)[:5]}"
    )
    assert set(want) == expected_files
    for day in every_day:
        mine, ref = committed(lake, day), committed(ref_lake, day)
        assert mine.data == ref.data, (
            f"{day}: the lake did not converge to the API's current answer"
        )
        for name in ("sha256", "row_count", "size", "window", "data_file", "format", "dataset"):
            assert mine.manifest.get(name) == ref.manifest.get(name), (day, name)
        if day in RESTATED:  # rewritten by the lookback, exactly these
            assert mine.manifest["previous_sha256"] == backfilled[day].sha256 != mine.sha256, day
            assert mine.manifest["restated_at"], day
        else:
            assert mine.manifest["previous_sha256"] is None, day
            if day in backfilled:
                assert mine.data == backfilled[day].data, day
    # the lookback's snapshot (as_of 2026-01-18T00:30Z) made 2026-01-10 final; younger days stay non-final
    assert [committed(lake, d).manifest["final"] for d in days(date(2026, 1, 9), NEXT_DAY)] == [
        True,
        True,
    ] + [False] * 7
