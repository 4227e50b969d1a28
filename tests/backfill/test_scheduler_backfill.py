"""A real backfill through Airflow's own scheduler, against the emulator with its limits on.

A private ``AIRFLOW_HOME`` (SQLite metadata DB in WAL mode, LocalExecutor) runs ``airflow api-server
--apps execution`` (the execution API the task processes talk to), ``airflow scheduler`` and
``airflow triggerer`` (for deferrals on a spent quota) as subprocesses, each in its own process
group. ``airflow dags reserialize`` stands in for the dag-processor (one parse, then no more writes
to SQLite during the run); the emulator runs as its own
subprocess (CLI) with the real limits (30 requests/minute, 500/day) and a frozen clock. The DAGs
folder holds a trimmed copy of ``dags/openrouter_daily.py`` (the sensor and ``RankingsDailyOperator``
with the same settings; the app rankings are left out because each one costs a real request at
30/minute). ``airflow backfill create`` then lands a range of days that crosses a year boundary,
and the test checks:

* every backfill run and task instance succeeded, first try, no retries;
* every day's partition and manifest exists, and each data file is byte-identical to a serial
  reference written one day at a time with ``coalesce=False`` against a second emulator;
* the emulator's request log matches ``planner.plan_backfill``: rankings chunk requests exactly one
  per year touched (and ``plan_backfill`` says so), nothing else; sensor probes at most one wave of
  the backfill's concurrency per year touched, every other sensor proven from the ``as_of`` memory.
  The probes stay within ``plan_backfill``'s bound (one wave of the backfill's concurrency per year).

All processes are killed (process groups, then any descendant left) whatever happens.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import subprocess
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from airflow_provider_openrouter import planner
from airflow_provider_openrouter.lake import storage

from tests.scheduler_stack import VENV_BIN, Stack, airflow_env, emulator_requests, free_port, query, wait_for

from .conftest import classify, days, lake_files, run_inline

pytestmark = pytest.mark.integration

#: 33 daily runs crossing 1 January: two calendar-year chunks.
FIRST, LAST = date(2025, 12, 15), date(2026, 1, 16)
#: The emulator's frozen clock: its last complete day is 2026-02-28, so every backfilled day is final.
EMULATOR_NOW = "2026-03-01T02:00:00Z"
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


# --------------------------------------------------------------------------- the test
def test_backfill_through_the_scheduler_is_cheap_complete_and_identical_to_serial(
    stack: Stack, tmp_path: Path, openrouter_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.monotonic()
    home, db = stack.home, stack.home / "airflow.db"
    lake = tmp_path / "lake"
    dag_file = home / "dags" / f"{DAG_ID}.py"
    dag_file.write_text(DAG_SOURCE.format(dag_id=DAG_ID, conn_id=CONN_ID, lake=lake.as_uri()))

    base_url = start_emulator(stack)
    stack.env["AIRFLOW_CONN_" + CONN_ID.upper()] = json.dumps(
        {"conn_type": "openrouter", "password": EMULATOR_KEY, "host": base_url}
    )
    migrate = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=stack.env, cwd=home,
                             capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    with sqlite3.connect(db) as conn:  # readers (this test's polling included) never block the writer
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"

    airflow = str(VENV_BIN / "airflow")
    # The DAG is serialized and the backfill created before the daemons start: SQLite cannot take the
    # CLI's long write transaction while the scheduler writes too ("database is locked" at once, a
    # stale WAL snapshot). With PostgreSQL both may run concurrently; the scheduler's work is the same.
    reserialize = subprocess.run([airflow, "dags", "reserialize"], env=stack.env, cwd=home,
                                 capture_output=True, text=True, timeout=120)
    assert reserialize.returncode == 0, reserialize.stdout[-3000:] + reserialize.stderr[-3000:]
    errors = query(db, "SELECT filename, stacktrace FROM import_error")
    assert not errors, f"the DAG file failed to import: {errors}"
    assert query(db, "SELECT is_paused FROM dag WHERE dag_id = ?", DAG_ID) == [(0,)]
    assert query(db, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID)
    create = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", DAG_ID, "--from-date", FIRST.isoformat(), "--to-date", LAST.isoformat()],
        env=stack.env, cwd=home, capture_output=True, text=True, timeout=60,
    )
    assert create.returncode == 0, create.stdout[-3000:] + create.stderr[-3000:]

    stack.start("api-server", [airflow, "api-server", "--apps", "execution", "--workers", "1"])
    port = int(stack.env["AIRFLOW__API__PORT"])

    def api_up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for("the execution API server", api_up, STARTUP_TIMEOUT, stack)
    stack.start("triggerer", [airflow, "triggerer"])  # for deferrals on 429s / a spent quota
    stack.start("scheduler", [airflow, "scheduler"])
    ready = time.monotonic()
    expected_runs = len(days(FIRST, LAST))

    def finished() -> bool:
        states = dict(query(db, "SELECT state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY state", DAG_ID))
        if states.get("failed"):
            raise AssertionError(f"backfill runs failed: {states}.\n{stack.tails(60)}")
        return sum(states.values()) == expected_runs and states.get("success", 0) == expected_runs

    try:
        wait_for(f"{expected_runs} backfill runs to succeed", finished, BACKFILL_TIMEOUT, stack, interval=1.0)
    except AssertionError as exc:
        states = query(db, "SELECT state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY state", DAG_ID)
        tis = query(db, "SELECT task_id, state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY 1, 2", DAG_ID)
        raise AssertionError(f"run states {states}, task states {tis}\n{exc}") from None
    backfill_seconds = time.monotonic() - ready

    # -- every run and task instance succeeded, first try, all backfill runs, the right days
    runs = query(db, "SELECT run_type, state, data_interval_start FROM dag_run WHERE dag_id = ?", DAG_ID)
    assert {(r[0], r[1]) for r in runs} == {("backfill", "success")}
    landed = sorted(datetime.fromisoformat(str(r[2])).date() for r in runs)
    assert landed == days(FIRST, LAST)
    tis = query(db, "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", DAG_ID)
    assert len(tis) == 2 * expected_runs
    assert {(t[0], t[1], t[2]) for t in tis} == {("wait_for_day", "success", 1), ("rankings_daily", "success", 1)}

    # -- the serial reference: one day at a time, coalesce=False, another emulator, same clock
    from airflow_provider_openrouter.operators.rankings import RankingsDailyOperator

    reference = openrouter_emulator_factory(rpm=None, daily_limit=None,
                                            now=datetime.fromisoformat(EMULATOR_NOW.replace("Z", "+00:00")))
    monkeypatch.setenv("AIRFLOW_CONN_OPENROUTER_REFERENCE", json.dumps(
        {"conn_type": "openrouter", "password": EMULATOR_KEY, "host": reference.base_url,
         "extra": {"requests_per_minute": 100000}}))
    ref_lake = tmp_path / "reference"
    serial = RankingsDailyOperator(task_id="rankings_daily", output_uri=ref_lake.as_uri(),
                                   openrouter_conn_id="openrouter_reference", coalesce=False)
    # outside a task process the sensors' as_of memory cannot be written: the reference does without it
    caplog.set_level(logging.ERROR, logger="airflow_provider_openrouter.runtime.as_of_memory")
    for day in days(FIRST, LAST):
        run_inline(serial, day)
    assert reference.request_count("/datasets/rankings-daily", status=200) == expected_runs

    got, want = lake_files(lake), lake_files(ref_lake)
    expected_files = {f"rankings_daily/date={d.isoformat()}/{name}" for d in days(FIRST, LAST)
                      for name in ("data.jsonl", "_manifest.json")}
    assert set(got) == expected_files, f"missing {sorted(expected_files - set(got))[:5]}, extra {sorted(set(got) - expected_files)[:5]}"
    assert set(want) == expected_files
    from airflow.sdk import ObjectStoragePath

    for day in days(FIRST, LAST):
        key = f"rankings_daily/date={day.isoformat()}"
        mine = storage.read_partition(ObjectStoragePath(f"{lake.as_uri()}/{key}"))
        ref = storage.read_partition(ObjectStoragePath(f"{ref_lake.as_uri()}/{key}"))
        assert mine is not None and ref is not None, key
        assert mine.data == ref.data, f"{key}: the backfilled data differs from the serial reference"
        for name in ("sha256", "row_count", "size", "window", "data_file", "format", "dataset", "citation", "previous_sha256"):
            assert mine.manifest.get(name) == ref.manifest.get(name), (key, name)
        assert mine.manifest["meta"]["as_of"] == "2026-03-01T02:00:00Z"

    # -- the request log against the planner
    from airflow_provider_openrouter.compat import DagBag

    bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    (concurrency,) = query(db, "SELECT max_active_runs FROM backfill WHERE dag_id = ?", DAG_ID)[0]
    plan = planner.plan_backfill(FIRST, LAST, planner.dag_shape(bag.dags[DAG_ID]), max_active_runs=concurrency)
    log = emulator_requests(base_url)
    admitted: dict[str, int] = {}
    for entry in log:
        assert entry["status"] in (200, 429), entry
        if entry["status"] == 200:
            kind = classify(entry)
            admitted[kind] = admitted.get(kind, 0) + 1
    refused = sum(1 for entry in log if entry["status"] == 429)
    years = {FIRST.year, LAST.year}
    report = (f"backfill of {expected_runs} days: {admitted} admitted, {refused} refused (429); "
              f"plan {plan.requests} (naive {plan.naive}); scheduler time {backfill_seconds:.1f} s, "
              f"test {time.monotonic() - started:.1f} s")
    print(report)
    assert admitted.get("chunk", 0) == len(years) == plan.requests["rankings-daily (operators)"], report
    chunk_windows = sorted((e["params"]["start_date"], e["params"]["end_date"]) for e in log
                           if e["status"] == 200 and classify(e) == "chunk")
    assert chunk_windows == [("2025-01-01", "2025-12-31"), ("2026-01-01", "2026-12-31")], report
    assert admitted.get("window", 0) == 0 and admitted.get("apps", 0) == plan.requests.get("app-rankings", 0), report
    assert set(admitted) <= {"chunk", "probe"}, report
    assert plan.naive["rankings-daily (operators)"] == plan.naive["rankings-daily (sensor probes)"] == expected_runs

    # -- sensor probes: only runs that start before any rankings task of their year has stored what it
    # saw probe (the as_of memory then proves every older day of that year). At most one wave of the
    # backfill's concurrency per calendar year touched; every other sensor passed from memory.
    probes = admitted.get("probe", 0)
    parts = [(FIRST, date(FIRST.year, 12, 31)), (date(LAST.year, 1, 1), LAST)]
    bound = sum(min(concurrency, (end - start).days + 1) for start, end in parts)
    proofs = [json.loads(v) if isinstance(v, str) else v for (v,) in query(
        db, "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'wait_for_day' AND key = 'return_value'", DAG_ID)]
    by_proof = {p: sum(1 for x in proofs if isinstance(x, dict) and x.get("proof") == p) for p in ("probe", "memory")}
    probed = sorted(e["params"]["start_date"] for e in log if e["status"] == 200 and classify(e) == "probe")
    report += f"; backfill concurrency {concurrency}, probe bound {bound}, sensor proofs {by_proof}, probed {probed}"
    assert 1 <= probes <= bound, report
    assert by_proof == {"probe": probes, "memory": expected_runs - probes}, report
    assert concurrency == planner.BACKFILL_MAX_ACTIVE_RUNS, report  # backfill create's default, as the planner assumes
    assert plan.requests["rankings-daily (sensor probes)"] == bound, report
    assert probes <= plan.requests["rankings-daily (sensor probes)"], report
