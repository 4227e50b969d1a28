"""The partitioned example DAGs under Airflow's own scheduler: daily partitions, keyed asset events,
one weekly rollup per completed week, and ``airflow backfill create`` over 10 partition dates.

A private ``AIRFLOW_HOME`` (SQLite metadata DB in WAL mode, LocalExecutor) runs ``airflow api-server``
(the execution API the task processes talk to), ``airflow scheduler`` and ``airflow dag-processor``
as subprocesses, each in its own process group; the emulator runs as its own subprocess (CLI) with
limits off and its clock frozen at the test's start. The DAGs folder holds ``dags/openrouter_partitioned.py``
verbatim. Before the daemons start, the DAGs are serialized and a backfill over partition dates
2025-03-01 .. 2025-03-10 is created (SQLite cannot take the CLI's write transaction while the
scheduler writes). Then the scheduler runs the 10 backfill runs and the scheduled run of the
latest partition (yesterday, real clock: ``catchup=False``), and the test checks:

* every ``openrouter_partitioned`` run succeeded, each backfill run has partition key = its date,
  and each run wrote exactly its day (data and manifest);
* every asset event of ``rankings_daily`` / ``app_rankings_popular`` carries its run's key;
* ``openrouter_weekly_share`` ran exactly once: for ``2025-03-03 (W10)``, the only week whose seven
  days all landed (03-01/02 belong to W09, 03-10 to W11, yesterday to its own week), consumed exactly
  those seven keyed events, and wrote the shares of that week with each input day's as_of and citation;
* the request economy of the interval DAG: one chunk request for 2025, a handful of sensor probes.

Processes are killed by process group (then any descendant left) whatever happens.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.partitions.conftest import DAG_FILE
from tests.scheduler_stack import (
    VENV_BIN,
    Stack,
    airflow_env,
    emulator_requests,
    free_port,
    query,
    wait_for,
)

pytestmark = pytest.mark.integration

UPSTREAM, ROLLUP = "openrouter_partitioned", "openrouter_weekly_share"
FIRST, LAST = date(2025, 3, 1), date(2025, 3, 10)
WEEK_KEY, WEEK = "2025-03-03 (W10)", [date(2025, 3, 3) + timedelta(days=i) for i in range(7)]
CONN_ID, EMULATOR_KEY = "openrouter_default", "sk-or-emulator"
STARTUP_TIMEOUT, RUNS_TIMEOUT, QUIET_SECONDS = 90.0, 150.0, 6.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    env = airflow_env(home, free_port())
    env.update(
        {
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "600",
            "OPENROUTER_OUTPUT_URI": (tmp_path / "lake").as_uri(),
            "OPENROUTER_TASK_RETRIES": "0",
        }
    )
    s = Stack(home, env)
    try:
        yield s
    finally:
        s.stop()


def read_partition(lake: Path, key: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_openrouter.lake import storage

    return storage.read_partition(ObjectStoragePath(f"{lake.as_uri()}/{key}"))


def test_partitions_rollup_and_backfill_through_the_scheduler(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    home, db, lake = stack.home, stack.home / "airflow.db", tmp_path / "lake"
    shutil.copy(DAG_FILE, home / "dags" / DAG_FILE.name)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    to_midnight = (
        datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc) - now
    ).total_seconds()
    if (
        to_midnight < 180
    ):  # the scheduled partition must be the emulator's last complete day for the whole test
        time.sleep(to_midnight + 2)
        now = datetime.now(timezone.utc).replace(microsecond=0)
    scheduled_day = now.date() - timedelta(days=1)  # catchup=False: the latest partition, yesterday

    base_url = stack.start_emulator("--now", now.isoformat(), "--rpm", "0", "--daily-limit", "0")
    stack.env["AIRFLOW_CONN_" + CONN_ID.upper()] = json.dumps(
        {"conn_type": "openrouter", "password": EMULATOR_KEY, "host": base_url}
    )

    stack.run("db", "migrate")
    stack.run("pools", "set", "openrouter", "4", "OpenRouter Data API")  # the example DAGs' pool
    with sqlite3.connect(
        db
    ) as conn:  # readers (this test's polling included) never block the writer
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    stack.run("dags", "reserialize")
    assert query(db, "SELECT filename, stacktrace FROM import_error") == []
    assert sorted(query(db, "SELECT dag_id, is_paused, timetable_partitioned FROM dag")) == [
        (UPSTREAM, 0, 1),
        (ROLLUP, 0, 1),
    ]
    dry = stack.run(
        "backfill",
        "create",
        "--dag-id",
        UPSTREAM,
        "--from-date",
        FIRST.isoformat(),
        "--to-date",
        LAST.isoformat(),
        "--dry-run",
    )
    assert all(f"2025-03-{d:02d}" in dry for d in range(1, 11)), dry
    stack.run(
        "backfill",
        "create",
        "--dag-id",
        UPSTREAM,
        "--from-date",
        FIRST.isoformat(),
        "--to-date",
        LAST.isoformat(),
        "--max-active-runs",
        "3",
    )

    stack.start(
        "api-server",
        [str(VENV_BIN / "airflow"), "api-server", "--apps", "execution", "--workers", "1"],
    )
    port = int(stack.env["AIRFLOW__API__PORT"])

    def api_up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for("the execution API server", api_up, STARTUP_TIMEOUT, stack)
    stack.start("dag-processor", [str(VENV_BIN / "airflow"), "dag-processor"])
    stack.start("scheduler", [str(VENV_BIN / "airflow"), "scheduler"])
    ready = time.monotonic()

    def runs(dag_id: str) -> list[tuple[Any, ...]]:
        return query(
            db,
            "SELECT id, run_id, run_type, state, partition_key, partition_date, logical_date, "
            "data_interval_start FROM dag_run WHERE dag_id = ? ORDER BY partition_key",
            dag_id,
        )

    def all_done() -> bool:
        upstream, rollup = runs(UPSTREAM), runs(ROLLUP)
        failed = [r for r in upstream + rollup if r[3] == "failed"]
        if failed:
            tis = query(
                db,
                "SELECT dag_id, run_id, task_id, state FROM task_instance WHERE state != 'success'",
            )
            raise AssertionError(f"runs failed: {failed}\ntask instances: {tis}\n{stack.tails(60)}")
        return (
            len(upstream) == 11
            and all(r[3] == "success" for r in upstream)
            and len(rollup) >= 1
            and all(r[3] == "success" for r in rollup)
        )

    try:
        wait_for(
            "10 backfill runs, the scheduled run and the weekly rollup to succeed",
            all_done,
            RUNS_TIMEOUT,
            stack,
        )
    except AssertionError as exc:
        states = query(db, "SELECT dag_id, run_type, state, count(*) FROM dag_run GROUP BY 1, 2, 3")
        tis = query(
            db, "SELECT dag_id, task_id, state, count(*) FROM task_instance GROUP BY 1, 2, 3"
        )
        raise AssertionError(f"runs {states}\ntask instances {tis}\n{exc}") from None
    scheduler_seconds = time.monotonic() - ready
    time.sleep(QUIET_SECONDS)  # a few more scheduler loops: no other week may be rolled up
    stack.check_alive()

    # -- the upstream runs: partition keys, no data interval, each run wrote exactly its day
    upstream = runs(UPSTREAM)
    expected_keys = [(FIRST + timedelta(days=i)).isoformat() for i in range(10)] + [
        scheduled_day.isoformat()
    ]
    assert sorted(r[4] for r in upstream) == sorted(expected_keys)
    for _, run_id, run_type, state, key, partition_date, logical_date, interval_start in upstream:
        assert state == "success" and logical_date is None and interval_start is None, run_id
        assert run_type == ("scheduled" if key == scheduled_day.isoformat() else "backfill"), (
            run_id,
            key,
        )
        assert str(partition_date).startswith(key), (key, partition_date)
        xcom = query(
            db,
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'rankings_daily' "
            "AND key = 'return_value'",
            UPSTREAM,
            run_id,
        )
        summary = json.loads(xcom[0][0])
        assert summary["window"]["start"] == summary["window"]["end"] == key, summary
        assert summary["partition_keys"] == [key]
        part = read_partition(lake, f"rankings_daily/date={key}")
        assert (
            part is not None
            and part.manifest["window"]["start"] == key
            and part.manifest["row_count"] > 0
        )
        assert read_partition(
            lake, f"app_rankings/sort=popular/category=all/subcategory=all/window={key}_{key}"
        )
    tis = query(
        db, "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", UPSTREAM
    )
    assert len(tis) == 3 * 11 and {t[1:] for t in tis} == {("success", 1)}, tis
    landed = sorted(p.name for p in (lake / "rankings_daily").iterdir())
    assert landed == sorted(f"date={k}" for k in expected_keys)

    # -- every asset event of the upstream carries its run's key
    events = query(
        db,
        "SELECT a.uri, e.partition_key, e.source_run_id, e.source_task_id, e.id FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id WHERE e.source_dag_id = ?",
        UPSTREAM,
    )
    key_of_run = {r[1]: r[4] for r in upstream}
    assert len(events) == 2 * 11, events
    for uri, key, run_id, task_id, _ in events:
        assert key == key_of_run[run_id], (uri, key, run_id)
        suffix = (
            "rankings_daily"
            if task_id == "rankings_daily"
            else "app_rankings/sort=popular/category=all/subcategory=all"
        )
        assert uri == f"{lake.as_uri()}/{suffix}", uri

    # -- the weekly rollup: exactly one run, for the only complete week, with exactly its 7 inputs
    rollup = runs(ROLLUP)
    assert [(r[2], r[3], r[4]) for r in rollup] == [("asset_triggered", "success", WEEK_KEY)], (
        rollup
    )
    assert str(rollup[0][5]).startswith("2025-03-03"), rollup  # partition_date: the Monday
    consumed = query(
        db,
        "SELECT e.partition_key FROM dagrun_asset_event d JOIN asset_event e ON e.id = d.event_id "
        "WHERE d.dag_run_id = ?",
        rollup[0][0],
    )
    assert sorted(k for (k,) in consumed) == [d.isoformat() for d in WEEK]
    share = read_partition(lake, "rankings_weekly_share/week=2025-03-03")
    assert share is not None
    manifest = share.manifest
    assert manifest["partition_key"] == WEEK_KEY and manifest["window"]["start"] == "2025-03-03"
    assert manifest["window"]["end"] == "2025-03-09"
    assert [i["window"]["start"] for i in manifest["inputs"]] == [d.isoformat() for d in WEEK]
    for item in manifest["inputs"]:
        daily = read_partition(lake, f"rankings_daily/date={item['window']['start']}")
        assert item["sha256"] == daily.sha256 and item["as_of"] == daily.manifest["meta"]["as_of"]
        assert (
            item["citation"] == daily.manifest["citation"] and item["as_of"] in manifest["citation"]
        )
    rows = [json.loads(line) for line in share.data.decode().splitlines()]
    week_tokens = 0
    for day in WEEK:
        day_rows = [
            json.loads(line)
            for line in read_partition(lake, f"rankings_daily/date={day}")
            .data.decode()
            .splitlines()
        ]
        week_tokens += sum(r["total_tokens"] for r in day_rows)
    assert sum(r["total_tokens"] for r in rows) == week_tokens
    assert abs(sum(r["share"] for r in rows) - 1) < 1e-9
    assert (
        all(r["citation"] == manifest["citation"] for r in rows)
        and rows[-1]["model_permaslug"] == "other"
    )
    out_events = query(
        db,
        "SELECT e.partition_key FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE a.uri = ?",
        f"{lake.as_uri()}/rankings_weekly_share",
    )
    assert out_events == [(WEEK_KEY,)]

    # -- request economy: one 2025 chunk for all ten backfill days, a few probes, one app request per run
    log = [e for e in emulator_requests(base_url) if e["status"] == 200]
    rankings = [
        (e["params"]["start_date"], e["params"]["end_date"])
        for e in log
        if e["path"].endswith("/rankings-daily")
    ]
    chunks = [w for w in rankings if w[0].endswith("-01-01") and w[1].endswith("-12-31")]
    probes = [
        w for w in rankings if w not in chunks
    ]  # the sensors' windows (a day, its lookback, up to today)
    apps = [e for e in log if e["path"].endswith("/app-rankings")]
    report = (
        f"{len(rankings)} rankings requests (chunks {chunks}, {len(probes)} probes), {len(apps)} app requests; "
        f"scheduler {scheduler_seconds:.0f} s, test {time.monotonic() - started:.0f} s"
    )
    print(report)
    assert chunks.count(("2025-01-01", "2025-12-31")) == 1, report
    # probes: sensors probe one at a time (a lease) and a probe's answer reaches the API's last day, so
    # the first one proves every day for the others (the as_of memory); a second only if a lease was lost
    assert len(chunks) == 1 and 1 <= len(probes) <= 2, report
    assert len(apps) == 11, report
