"""Helpers of the backfill tests: run a task's real ``execute`` in this process, compare lakes,
read the emulator's request log.

``run_inline(task, day)`` calls the operator's own ``execute`` (as Airflow's task runner does, with
the executor safeguard satisfied) with the context keys the provider reads: the data interval of
the daily run that lands ``day``, the task, a TaskInstance stand-in holding XComs in a dict, and
outlet events. It is how the serial reference lake is written (one day at a time, ``coalesce=False``)
without a scheduler.
"""

from __future__ import annotations

import contextvars
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ONE_DAY = timedelta(days=1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def days(first: date, last: date) -> list[date]:
    out, day = [], first
    while day <= last:
        out.append(day)
        day += ONE_DAY
    return out


@dataclass
class InlineTI:
    """The TaskInstance methods the provider calls: XCom push/pull in a shared dict."""

    task_id: str
    store: dict[tuple[str, str], Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        if isinstance(task_ids, str):
            return self.store.get((task_ids, key))
        return [self.store.get((task_id, key)) for task_id in task_ids or ()]

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


def run_inline(task: Any, day: date, xcoms: dict[tuple[str, str], Any] | None = None) -> Any:
    """Run ``task.execute`` for the daily run landing ``day`` ([day, day+1) at 00:00 UTC)."""
    from airflow.sdk.bases.operator import ExecutorSafeguard

    context = {
        "data_interval_start": midnight(day),
        "data_interval_end": midnight(day + ONE_DAY),
        "logical_date": midnight(day),
        "task": task,
        "ti": InlineTI(task.task_id, xcoms if xcoms is not None else {}),
        "outlet_events": defaultdict(SimpleNamespace),
        "params": {},
    }
    ctx = contextvars.copy_context()
    ctx.run(ExecutorSafeguard.tracker.set, task)
    result = ctx.run(task.execute, context)
    context["ti"].xcom_push("return_value", result)
    return result


def lake_files(root: Path, *, skip_cache: bool = True) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), the chunk cache left out by default."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = str(Path(dirpath, name).relative_to(root))
            if skip_cache and rel.startswith("_cache/"):
                continue
            out[rel] = Path(dirpath, name).read_bytes()
    return out


def classify(request: dict[str, Any]) -> str:
    """Which kind of spending an emulator log entry is: probe, chunk, apps or other."""
    path, params = request["path"], request["params"]
    if path.endswith("/datasets/app-rankings"):
        return "apps"
    if not path.endswith("/datasets/rankings-daily"):
        return "other"
    start, end = params.get("start_date"), params.get("end_date")
    if start and end and start.endswith("-01-01") and end.endswith("-12-31"):
        return "chunk"
    # the sensor's window: its day, the 7 before it, and on towards today for an old day (an operator's
    # own window, with coalesce=False or across 1 January, looks the same)
    return "probe"
