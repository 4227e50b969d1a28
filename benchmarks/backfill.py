"""Benchmark: requests and wall time of a full-history backfill of ``openrouter_daily``, beside naive.

Run: ``.venv/bin/python benchmarks/backfill.py`` (options: ``--help``). Prints figures; asserts nothing.

The scenario is ``airflow backfill create`` of ``dags/openrouter_daily.py`` from 2025-01-01 to the
emulator's last complete day (about 690 daily runs). To keep it fast the runs are executed
in this process, one after the other in date order, by calling each task's own ``execute`` (the
code path Airflow's task runner calls) with the context keys the provider reads; the tasks are the
DAG file's own (parsed with ``DagBag``). The emulator (in-process) serves the same deterministic
data as the real API's shape; its rate limits are off so the run takes minutes, not days. What
each figure would cost at the real limits is printed beside it.

Two ways, measured the same way:

* **provider**: the DAG as shipped: rankings coalesced through the chunk cache, the sensors'
  ``as_of`` memory, the rankings operator reusing the sensor's probe;
* **naive**: one request per run and task: ``coalesce=False``, no ``as_of`` memory, and each
  task asks for itself (the sensor's probe is not shared).

Run by run in this process; with ``airflow backfill create`` (10 runs at a time by default) the
sensors probe one at a time and the first probe proves every day, so the counts are the same (see
``tests/backfill/test_scheduler_backfill.py``).

The ``as_of`` memory is an Airflow Variable; outside a task process Airflow cannot write Variables,
so here it lives in a dict with the same ``get``/``set`` calls (the memory's logic is the real one).
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "dags" / "openrouter_daily.py"
ONE_DAY = timedelta(days=1)
DAILY_QUOTA = 500
PER_MINUTE = 30


# ----------------------------------------------------------------------------- environment
def prepare_environment(home: Path) -> None:
    """A throw-away Airflow home, quiet logs; must run before Airflow is imported."""
    (home / "dags").mkdir(parents=True, exist_ok=True)
    for key in [
        k
        for k in os.environ
        if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "OPENROUTER_"))
    ]:
        del os.environ[key]
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "OPENROUTER_TASK_RETRIES": "0",
        }
    )


class VariableStore:
    """Stands in for the metadata DB's Variables (``airflow.sdk.Variable.get``/``set``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.values: dict[str, Any] = {}
        self.writes = 0

    def install(self) -> None:
        from airflow.sdk import Variable

        store = self

        def get(key: str, default: Any = None, deserialize_json: bool = False) -> Any:
            if key not in store.values:
                return default
            value = store.values[key]
            return json.loads(value) if deserialize_json else value

        def set_(
            key: str, value: Any, description: str | None = None, serialize_json: bool = False
        ) -> None:
            if store.enabled:
                store.values[key] = json.dumps(value) if serialize_json else value
                store.writes += 1

        Variable.get = staticmethod(get)  # type: ignore[method-assign]
        Variable.set = staticmethod(set_)  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- running tasks
@dataclass
class InlineTI:
    """The TaskInstance calls the provider makes: XComs in a dict shared by one run's tasks."""

    task_id: str
    store: dict[tuple[str, str], Any]
    share: bool = True

    def xcom_push(self, key: str, value: Any) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", **_: Any) -> Any:
        if not self.share:
            return None if isinstance(task_ids, str) else [None]
        if isinstance(task_ids, str):
            return self.store.get((task_ids, key))
        return [self.store.get((t, key)) for t in task_ids or ()]

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


def run_task(task: Any, day: date, xcoms: dict[tuple[str, str], Any], share: bool) -> Any:
    """``task.execute`` for the daily run landing ``day``, as the task runner calls it."""
    from airflow.sdk.bases.operator import ExecutorSafeguard

    start = datetime.combine(day, dtime(0), tzinfo=timezone.utc)
    context = {
        "data_interval_start": start,
        "data_interval_end": start + ONE_DAY,
        "logical_date": start,
        "task": task,
        "ti": InlineTI(task.task_id, xcoms, share),
        "outlet_events": defaultdict(SimpleNamespace),
        "params": {},
    }
    ctx = contextvars.copy_context()
    ctx.run(ExecutorSafeguard.tracker.set, task)
    return ctx.run(task.execute, context)


@dataclass
class Scenario:
    name: str
    coalesce: bool
    memory: bool
    share_probe: bool
    lake: Path
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    runs: int = 0
    failures: list[str] = field(default_factory=list)


def load_tasks(lake: Path, conn_id: str, apps: str) -> tuple[Any, Any, list[Any]]:
    """The DAG file's sensor and rankings task, and the app-rankings task instances to run."""
    os.environ["OPENROUTER_OUTPUT_URI"] = lake.as_uri()
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_openrouter.operators.rankings import AppRankingsOperator

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    if bag.import_errors:
        raise SystemExit(f"{DAG_FILE} does not import: {bag.import_errors}")
    dag = bag.dags["openrouter_daily"]
    sensor, rankings = dag.get_task("wait_for_day"), dag.get_task("rankings_daily")
    app_tasks = []
    if apps != "none":
        for task in dag.tasks:
            if not task.task_id.startswith("app_rankings_"):
                continue
            kwargs = dict(task.partial_kwargs)
            categories = task.expand_input.value["category"]
            if apps == "one":
                categories = categories[:1]
            for category in categories:
                app_tasks.append(
                    AppRankingsOperator(
                        task_id=f"{task.task_id}_{category or 'all'}",
                        output_uri=lake.as_uri(),
                        openrouter_conn_id=conn_id,
                        sort=kwargs["sort"],
                        category=category,
                        max_apps=kwargs.get("max_apps", 50),
                    )
                )
            if apps == "one":
                break
    return sensor, rankings, app_tasks


def run_scenario(
    scenario: Scenario, first: date, last: date, emulator: Any, conn_id: str, apps: str
) -> None:
    from airflow_provider_openrouter.runtime.as_of_memory import variable_key

    store = VariableStore(enabled=scenario.memory)
    store.install()
    store.values.pop(variable_key(conn_id), None)
    sensor, rankings, app_tasks = load_tasks(scenario.lake, conn_id, apps)
    rankings.coalesce = scenario.coalesce
    emulator.reset()
    spans: list[tuple[str, int, int]] = []  # (spender, first log index, end log index)

    def logged() -> int:
        return len(
            emulator._log
        )  # the request log's length (a copy of the whole log would be O(n))

    day = first
    started, cpu = time.perf_counter(), time.process_time()
    while day <= last:
        xcoms: dict[tuple[str, str], Any] = {}
        try:
            for kind, task in [
                ("sensor", sensor),
                ("rankings", rankings),
                *(("apps", t) for t in app_tasks),
            ]:
                before = logged()
                try:
                    run_task(task, day, xcoms, scenario.share_probe)
                finally:
                    spans.append((kind, before, logged()))
        except Exception as exc:
            scenario.failures.append(f"{day}: {type(exc).__name__}: {exc}")
        scenario.runs += 1
        day += ONE_DAY
    scenario.seconds = time.perf_counter() - started
    scenario.cpu_seconds = time.process_time() - cpu
    log = emulator.requests
    for kind, begin, end in spans:
        for entry in log[begin:end]:
            scenario.counts[classify(kind, entry)] += 1


SENSOR, RANKINGS, APPS = "sensor probes", "rankings-daily (operator)", "app-rankings"


def classify(kind: str, entry: dict[str, Any]) -> str:
    if entry["status"] != 200:
        return f"refused ({entry['status']}, {kind})"
    return {"sensor": SENSOR, "rankings": RANKINGS, "apps": APPS}[kind]


def data_digest(lake: Path) -> tuple[int, str]:
    """Number of data files and one digest over their relative paths and bytes (cache excluded)."""
    digest, count = hashlib.sha256(), 0
    for path in sorted(lake.rglob("data.*")):
        rel = path.relative_to(lake).as_posix()
        if rel.startswith("_cache/"):
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes())
        count += 1
    return count, digest.hexdigest()


# ----------------------------------------------------------------------------- report
def report(
    first: date,
    last: date,
    scenarios: list[Scenario],
    plan: Any,
    apps: str,
    app_tasks_per_run: int,
    dag_app_requests_per_run: int,
) -> None:
    days = (last - first).days + 1
    kinds = [SENSOR, RANKINGS, APPS]
    kinds += sorted({k for s in scenarios for k in s.counts} - set(kinds))
    width = 34
    print()
    print(f"Backfill of openrouter_daily: {first} .. {last} ({days} daily runs)")
    print(f"app rankings: {apps_note(apps, app_tasks_per_run)}")
    print(f"{'requests':<{width}}" + "".join(f"{s.name:>14}" for s in scenarios))
    for kind in kinds:
        print(f"{kind:<{width}}" + "".join(f"{s.counts.get(kind, 0):>14}" for s in scenarios))
    totals = [sum(v for k, v in s.counts.items() if not k.startswith("refused")) for s in scenarios]
    print(f"{'total':<{width}}" + "".join(f"{t:>14}" for t in totals))
    print(
        f"{'requests per backfilled day':<{width}}" + "".join(f"{t / days:>14.3f}" for t in totals)
    )
    rankings = [s.counts.get(kinds[0], 0) + s.counts.get(kinds[1], 0) for s in scenarios]
    print(f"{'  rankings + probes only':<{width}}" + "".join(f"{r:>14}" for r in rankings))
    print(
        f"{'  ... per backfilled day':<{width}}" + "".join(f"{r / days:>14.4f}" for r in rankings)
    )
    print(
        f"{'days of the 500/day quota':<{width}}"
        + "".join(f"{t / DAILY_QUOTA:>14.2f}" for t in totals)
    )
    print(
        f"{'minutes at 30/min, at least':<{width}}"
        + "".join(f"{t / PER_MINUTE:>14.1f}" for t in totals)
    )
    print(
        f"{'wall time here (limits off), s':<{width}}"
        + "".join(f"{s.seconds:>14.1f}" for s in scenarios)
    )
    print(
        f"{'  per run, ms':<{width}}"
        + "".join(f"{1000 * s.seconds / max(1, s.runs):>14.1f}" for s in scenarios)
    )
    print(  # waits (leases settling, pacing) cost wall time, not CPU
        f"{'  CPU per run, ms (emulator incl.)':<{width}}"
        + "".join(f"{1000 * s.cpu_seconds / max(1, s.runs):>14.1f}" for s in scenarios)
    )
    print(f"{'failed runs':<{width}}" + "".join(f"{len(s.failures):>14}" for s in scenarios))
    missing_apps = dag_app_requests_per_run * days - scenarios[0].counts.get(APPS, 0)
    if missing_apps > 0:
        full = [
            t + dag_app_requests_per_run * days - s.counts.get(APPS, 0)
            for s, t in zip(scenarios, totals)
        ]
        print(
            f"{'whole DAG (all app tasks), est.':<{width}}"
            + "".join(f"{t:>14}" for t in full)
            + f"   ({dag_app_requests_per_run} app requests per run in the DAG, both ways)"
        )
        print(
            f"{'  ... days of the 500/day quota':<{width}}"
            + "".join(f"{t / DAILY_QUOTA:>14.2f}" for t in full)
        )
    for s in scenarios:
        for failure in s.failures[:5]:
            print(f"  {s.name}: {failure}")
    digests = [data_digest(s.lake) for s in scenarios]
    same = len(set(digests)) == 1
    print(
        f"data files: {digests[0][0]} per scenario; byte-identical across scenarios: {'yes' if same else 'NO'}"
    )
    print()
    print("planner (python -m airflow_provider_openrouter.planner) for the same range and DAG:")
    print("  " + plan.report().replace("\n", "\n  "))


def apps_note(apps: str, per_run: int) -> str:
    if apps == "all":
        return f"all {per_run} app tasks of the DAG per run (not coalescible: same cost both ways)"
    if apps == "one":
        return (
            f"{per_run} of the DAG's app tasks per run (--apps all runs every one; they cost the same "
            "both ways, one request per task and run)"
        )
    return (
        "left out (--apps none); the DAG's app tasks cost one request per task and run, both ways"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--now",
        help="the emulator's frozen clock, ISO (default: today 02:00 UTC, so the last "
        "complete day is yesterday)",
    )
    parser.add_argument("--from", dest="first", default="2025-01-01")
    parser.add_argument(
        "--to", dest="last", help="last day to land (default: the emulator's last complete day)"
    )
    parser.add_argument(
        "--apps",
        choices=("none", "one", "all"),
        default="one",
        help="app-rankings tasks per run: none, the first (popular, all apps; default) or all of the DAG's",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary Airflow home and both lakes"
    )
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="bench_backfill_"))
    try:
        return run(args, home)
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def run(args: argparse.Namespace, home: Path) -> int:
    prepare_environment(home)
    sys.path.insert(0, str(ROOT))

    from airflow_provider_openrouter import planner
    from airflow_provider_openrouter.testing import Emulator

    now = (
        datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        if args.now
        else datetime.combine(datetime.now(timezone.utc).date(), dtime(2), tzinfo=timezone.utc)
    )
    conn_id = "openrouter_default"
    with Emulator(rpm=None, daily_limit=None, now=now) as emulator:
        first = date.fromisoformat(args.first)
        last = date.fromisoformat(args.last) if args.last else emulator.last_complete_day()
        os.environ["AIRFLOW_CONN_" + conn_id.upper()] = json.dumps(
            {
                "conn_type": "openrouter",
                "password": "sk-or-emulator",
                "host": emulator.base_url,
                "extra": {"requests_per_minute": 10**6},
            }
        )
        print(
            f"emulator clock {now.isoformat()}, last complete day {emulator.last_complete_day()}; "
            f"running {(last - first).days + 1} runs per scenario in process (Airflow home {home})",
            flush=True,
        )
        scenarios = [
            Scenario(
                "provider",
                coalesce=True,
                memory=True,
                share_probe=True,
                lake=home / "lake-provider",
            ),
            Scenario(
                "naive", coalesce=False, memory=False, share_probe=False, lake=home / "lake-naive"
            ),
        ]
        for scenario in scenarios:
            print(f"  {scenario.name} ...", end="", flush=True)
            run_scenario(scenario, first, last, emulator, conn_id, args.apps)
            print(f" {scenario.seconds:.1f} s", flush=True)
        _, _, app_tasks = load_tasks(home / "lake-provider", conn_id, args.apps)
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False).dags["openrouter_daily"]
        shape = planner.dag_shape(dag)
        plan = planner.plan_backfill(first, last, shape)
        from airflow_provider_openrouter.api.datasets.app_rankings import app_pages

        report(
            first,
            last,
            scenarios,
            plan,
            args.apps,
            len(app_tasks),
            sum(len(app_pages(n)) for n in shape.app_max_apps),
        )
        print(
            "\nRuns here go one at a time; `airflow backfill create` starts 10 runs at once by default: the sensors\n"
            "then probe one at a time (a lease), and the first probe proves every day, so the count is the same\n"
            "(tests/backfill/test_scheduler_backfill.py checks it through the real scheduler)."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
