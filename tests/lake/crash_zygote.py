"""Commits that kill themselves with SIGKILL at a chosen point: the subprocess of the crash tests.

``python crash_zygote.py '<json list of scenarios>'``; a scenario is
``{"base": "file:///...", "version": 2, "days": ["2025-07-04", ...], "point": "during"|"after"|"remove", "k": 3}``.

The process imports Airflow and the provider once, then forks one child per scenario (so the
matrix costs one interpreter start). Each child stages and commits every day partition of
``base`` exactly as the operators do, and sends itself SIGKILL

* ``during`` the k-th atomic write: its temp file is written and fsynced, the rename has not happened;
* ``after`` the k-th atomic write completed;
* ``remove``: right after the k-th removal of a pending file.

Prints one JSON line per scenario: ``{"index": i, "signal": <signal that ended the child or null>}``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import date

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import helpers
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _child(scenario: dict) -> None:
    point, k = scenario["point"], scenario["k"]
    counts = {"write": 0, "replace": 0, "remove": 0}
    real_write, real_replace, real_remove = storage.write_atomic, os.replace, storage.remove

    def write_atomic(path, data):
        real_write(path, data)
        counts["write"] += 1
        if point == "after" and counts["write"] == k:
            _die()

    def replace(src, dst):
        counts["replace"] += 1
        if point == "during" and counts["replace"] == k:
            _die()
        real_replace(src, dst)

    def remove(path):
        real_remove(path)
        if path.name.startswith(storage.PENDING_PREFIX):
            counts["remove"] += 1
            if point == "remove" and counts["remove"] == k:
                _die()

    storage.write_atomic, storage.remove, os.replace = write_atomic, remove, replace
    helpers.commit_days(
        ObjectStoragePath(scenario["base"]),
        scenario["version"],
        [date.fromisoformat(d) for d in scenario["days"]],
    )


def main() -> None:
    for index, scenario in enumerate(json.loads(sys.argv[1])):
        pid = os.fork()
        if pid == 0:
            try:
                _child(scenario)
            finally:
                os._exit(0)  # reached only when no crash point was hit
        _, status = os.waitpid(pid, 0)
        print(
            json.dumps(
                {"index": index, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
