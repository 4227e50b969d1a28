"""kill -9 at every write of a commit: each partition stays old or becomes completely new.

A real subprocess (``crash_zygote.py``) commits and SIGKILLs itself at each hooked point: during
each atomic write (temp file written, not renamed), after each write, after each pending-file
removal. Afterwards every partition must read, by the reader rule, as exactly the old bytes or
exactly the new ones, no data file may exist without a manifest, and the next run must leave
exactly the new data with no leftovers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.api.datasets import rankings_daily
from airflow_provider_openrouter.lake import storage

from . import helpers

pytestmark = pytest.mark.integration

DAYS = [date(2025, 7, 4), date(2025, 7, 5)]
ZYGOTE = Path(__file__).with_name("crash_zygote.py")


def _prepare(base: ObjectStoragePath, start: str) -> None:
    if start == "v1":
        helpers.commit_days(base, 1, DAYS)


def _count_points(tmp_path: Path, start: str, mocker) -> tuple[int, int]:
    """How many atomic writes and pending removals the commit makes (a dry run in process)."""
    base = ObjectStoragePath(f"file://{tmp_path}/probe")
    _prepare(base, start)
    writes = mocker.spy(storage, "write_atomic")
    removes = mocker.spy(storage, "remove")
    helpers.commit_days(base, 2, DAYS)
    pending_removals = sum(
        1 for c in removes.call_args_list if c.args[0].name.startswith(storage.PENDING_PREFIX)
    )
    count = writes.call_count
    mocker.stopall()
    return count, pending_removals


@pytest.mark.parametrize("start", ["empty", "v1"])
def test_kill_9_at_every_point_of_a_commit(tmp_path: Path, start: str, mocker) -> None:
    writes, removals = _count_points(tmp_path, start, mocker)
    assert (writes, removals) == (
        8,
        2,
    )  # 2 pending files, then per partition: manifest, data, manifest
    points = [("during", k) for k in range(1, writes + 1)] + [
        ("after", k) for k in range(1, writes + 1)
    ]
    points += [("remove", k) for k in range(1, removals + 1)]
    scenarios = []
    for index, (point, k) in enumerate(points):
        base = ObjectStoragePath(f"file://{tmp_path}/s{index}")
        _prepare(base, start)
        scenarios.append(
            {
                "base": str(base),
                "version": 2,
                "days": [d.isoformat() for d in DAYS],
                "point": point,
                "k": k,
            }
        )

    proc = subprocess.run(
        [sys.executable, str(ZYGOTE), json.dumps(scenarios)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["signal"] for r in results] == [signal.SIGKILL] * len(scenarios), proc.stderr[-3000:]

    seen: set[tuple[str, ...]] = set()
    for scenario in scenarios:
        base = ObjectStoragePath(scenario["base"])
        states = []
        for day in DAYS:
            directory = storage.join(base, rankings_daily.partition_key(day))
            committed = storage.read_partition(directory)
            old = None if start == "empty" else helpers.expected_bytes(1, day=day)
            new = helpers.expected_bytes(2, day=day)
            state = (
                "absent"
                if committed is None
                else (
                    "old" if committed.data == old else "new" if committed.data == new else "MIXED"
                )
            )
            assert state in (("absent", "new") if start == "empty" else ("old", "new")), (
                scenario,
                day,
                state,
            )
            names = os.listdir(directory.path) if os.path.isdir(directory.path) else []
            if "data.jsonl" in names:
                assert "_manifest.json" in names, (scenario, names)
            states.append(state)
        seen.add(tuple(states))

        again = helpers.commit_days(base, 2, DAYS)  # the next run repairs and cleans
        assert {s.status for s in again} <= {"created", "restated", "repaired", "unchanged"}
        for day in DAYS:
            directory = storage.join(base, rankings_daily.partition_key(day))
            assert sorted(os.listdir(directory.path)) == ["_manifest.json", "data.jsonl"]
            committed = storage.read_partition(directory)
            assert committed.data == helpers.expected_bytes(2, day=day)
            if start == "v1":
                assert committed.manifest["previous_sha256"] == storage.sha256_hex(
                    helpers.expected_bytes(1, day=day)
                )
    before, after = ("absent", "old")[start == "v1"], "new"
    # the matrix crossed every boundary: nothing committed, one partition committed, both committed
    assert {(before, before), (after, before), (after, after)} <= seen
