"""kill -9 of a real DAG run in the middle of its commit; the next run repairs everything.

A fresh process runs the DAG through dag.test() and SIGKILLs itself after its 4th atomic write:
the two restated days are staged (writes 1-2), the first one's commit point and data file are
written (3-4), its final manifest and the second day's commit are not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage

from .conftest import Env

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("crash_dag_run.py")


def read(env: Env, day: str) -> storage.CommittedPartition:
    found = storage.read_partition(ObjectStoragePath(f"{env.uri}/rankings_daily/date={day}"))
    assert found is not None
    return found


def test_kill_9_mid_commit_leaves_each_day_old_or_new_and_the_rerun_finishes(env: Env) -> None:
    env.dag(
        'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)',
        schedule="weekly",
    )
    assert env.run("2025-07-08").state == "success"
    old = {d: read(env, d) for d in ("2025-07-02", "2025-07-05", "2025-07-06")}
    env.emulator.restate("2025-07-02")
    env.emulator.restate("2025-07-05")

    proc = subprocess.run(
        [sys.executable, str(SCRIPT), env.dag_id, "2025-07-08T00:00:00+00:00", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    first, second, untouched = (
        read(env, "2025-07-02"),
        read(env, "2025-07-05"),
        read(env, "2025-07-06"),
    )
    assert first.sha256 != old["2025-07-02"].sha256 and first.data_file.startswith(
        "_pending-"
    )  # committed, unfinished
    assert first.manifest["previous_sha256"] == old["2025-07-02"].sha256
    assert (
        second.data == old["2025-07-05"].data and second.data_file == "data.jsonl"
    )  # staged only: still old
    assert untouched.data == old["2025-07-06"].data
    leftovers = [name for name in env.files() if "/_pending-" in name]
    assert len(leftovers) == 2

    result = env.run("2025-07-08")
    assert result.state == "success"
    summary = result.xcom("rankings")
    assert summary["partitions"] == {
        "created": 0,
        "restated": 1,
        "replaced": 0,
        "repaired": 1,
        "unchanged": 5,
    }
    assert not [name for name in env.files() if "/_pending-" in name or "/_tmp-" in name]
    assert (
        read(env, "2025-07-02").data == first.data
        and read(env, "2025-07-02").data_file == "data.jsonl"
    )
    assert read(env, "2025-07-02").manifest["previous_sha256"] == old["2025-07-02"].sha256
    assert read(env, "2025-07-05").manifest["previous_sha256"] == old["2025-07-05"].sha256
