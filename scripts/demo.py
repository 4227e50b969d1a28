"""The one-command demo: run the example DAG ``openrouter_daily`` through Airflow for the last
three complete UTC days, then ``openrouter_session_cost`` once (the current weekly session-cost
snapshot), and print what landed where.

    .venv/bin/python scripts/demo.py        (or: make demo)

* Airflow home ``./.airflow`` with its own SQLite metadata DB (migrated here, with the pool
  ``openrouter`` or ``$OPENROUTER_POOL`` that the example DAGs use); DAGs from ``./dags``.
* OpenRouter: the bundled emulator on 127.0.0.1, unless ``OPENROUTER_API_KEY`` is set (then the
  real API with that key; about 35 requests of the 500/day quota).
* Output: ``OPENROUTER_OUTPUT_URI`` (default ``file://<repo>/data``) with ``OPENROUTER_OUTPUT_CONN_ID``.
* Each day is one ``airflow dags test openrouter_daily <D+1>`` (the run whose data interval is day D).
  Its full log goes to ``.airflow/demo-logs/``; progress is printed as tasks finish, and a run that
  takes longer than ``OPENROUTER_DEMO_RUN_TIMEOUT`` seconds (default 300) is stopped with its log tail.

Running it again rewrites nothing when upstream data is unchanged: the report says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".airflow"
LOGS = HOME / "demo-logs"
BIN = Path(sys.executable).parent
EMULATOR_KEY = "sk-or-emulator"
RUN_TIMEOUT = float(os.environ.get("OPENROUTER_DEMO_RUN_TIMEOUT", "300"))
HEARTBEAT = 15.0
TOP_MODELS = 5


def say(message: str = "") -> None:
    print(message, flush=True)


def configure_environment() -> dict[str, str]:
    """Environment of every Airflow command (and of this process, before Airflow is imported)."""
    HOME.mkdir(exist_ok=True)
    LOGS.mkdir(exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "OPENROUTER_OUTPUT_URI": os.environ.get("OPENROUTER_OUTPUT_URI")
            or (REPO / "data").as_uri(),
            "OPENROUTER_TASK_RETRIES": "0",  # a failure shows at once instead of after retry delays
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return dict(os.environ)


def run_logged(
    args: list[str], log_path: Path, label: str, timeout: float, progress: bool = False
) -> None:
    """Run a command with its output in ``log_path``; heartbeat while it runs; stop it at ``timeout``."""
    started = time.monotonic()
    lines: queue.Queue[str | None] = queue.Queue()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        threading.Thread(target=_pump, args=(proc.stdout, log, lines), daemon=True).start()
        next_beat = started + HEARTBEAT
        try:
            while True:
                try:
                    line = lines.get(timeout=1.0)
                except queue.Empty:
                    line = ""
                if line is None:
                    break
                if progress and line:
                    _show_progress(line)
                now = time.monotonic()
                if now - started > timeout:
                    fail(
                        f"{label} did not finish within {timeout:.0f} s and was stopped.", log_path
                    )
                if now >= next_beat:
                    say(f"    ... {label} still running ({now - started:.0f} s)")
                    next_beat = now + HEARTBEAT
        finally:  # interrupted, timed out or our output closed: never leave the run behind
            if proc.poll() is None:
                proc.kill()
        code = proc.wait()
    if code != 0:
        fail(f"{label} failed (exit code {code}).", log_path)
    say(f"    {label}: done in {time.monotonic() - started:.1f} s")


def _pump(stream: IO[str], log: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        log.write(line)
        log.flush()
        lines.put(line)
    lines.put(None)


#: Task log messages worth showing while a run progresses (what the sensor spent, reuse of its probe).
_NOTEWORTHY = (
    "is complete. Spent",
    "was already proven complete",
    "Reusing the as_of sensor's probe",
    "Found the session-cost snapshot due",
    "is the newest one due",
    "already landed with identical data",
    "no session-cost snapshot published",
)


def _message(line: str) -> str:
    """The message of a structlog console line ``<time> [level    ] <message> [<logger>] loc=...``."""
    text = line.split("] ", 1)[-1]
    return text.split(" [airflow", 1)[0].split(" [task]", 1)[0].strip()


def _show_progress(line: str) -> None:
    if "[DAG TEST] end task" in line:
        fields = dict(
            part.split("=", 1)
            for part in line.split()
            if part.startswith(("task_id=", "map_index="))
        )
        index = fields.get("map_index", "-1")
        say(f"      finished {fields.get('task_id', '?')}{'' if index == '-1' else f'[{index}]'}")
    elif "Task failed" in line or "[error" in line:
        say(f"      {line.strip()[:200]}")
    elif any(marker in line for marker in _NOTEWORTHY):
        say(f"        {_message(line)[:200]}")


def fail(message: str, log_path: Path | None = None) -> None:
    say(f"\nDEMO FAILED: {message}")
    if log_path is not None and log_path.exists():
        tail = log_path.read_text(errors="replace").splitlines()[-40:]
        say(f"Last lines of {log_path}:")
        for line in tail:
            say("  | " + line[:300])
    raise SystemExit(1)


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """The bundled emulator (real time, real limits: 30/min, 500/day); returns it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_openrouter.testing.emulator", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: first.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        base_url = first.get(timeout=30).strip()
    except queue.Empty:
        base_url = ""
    if not base_url.startswith("http"):
        proc.kill()
        fail("the emulator did not start (no base URL printed within 30 s).")
    return proc, base_url


def last_complete_day(base_url: str, key: str) -> tuple[date, str]:
    """Ask OpenRouter (one small request) which day is the last complete one, and as of when."""
    from airflow_provider_openrouter.api.datasets.rankings_daily import PATH as RANKINGS_DAILY_PATH
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook

    client = OpenRouterHook().get_conn()  # the connection set up from base_url and key just before
    start = datetime.now(timezone.utc).date() - timedelta(days=4)
    try:
        meta = client.get(RANKINGS_DAILY_PATH, {"start_date": start.isoformat()})["meta"]
    except Exception as exc:
        fail(f"OpenRouter did not answer: {exc}")
    finally:
        client.close()
    return date.fromisoformat(meta["end_date"]), str(meta["as_of"])


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (local output only)."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def main() -> int:
    env = configure_environment()
    output_uri = env["OPENROUTER_OUTPUT_URI"].rstrip("/")
    local_root = (
        Path(unquote(output_uri[len("file://") :])) if output_uri.startswith("file://") else None
    )
    before = snapshot(local_root) if local_root else {}
    key = os.environ.get("OPENROUTER_API_KEY", "").strip()
    emulator: subprocess.Popen[str] | None = None
    started = time.monotonic()
    try:
        say(f"[1/4] Airflow home {HOME} (SQLite); migrating the metadata DB")
        run_logged(
            [str(BIN / "airflow"), "db", "migrate"],
            LOGS / "db-migrate.log",
            "airflow db migrate",
            300,
        )
        # every task that calls OpenRouter runs in this pool (dags/*.py); without it none would be queued
        pool = os.environ.get("OPENROUTER_POOL") or "openrouter"
        run_logged(
            [
                str(BIN / "airflow"),
                "pools",
                "set",
                pool,
                "4",
                "OpenRouter Data API: every task that calls it",
            ],
            LOGS / "pool.log",
            f"airflow pools set {pool}",
            120,
        )

        if key:
            base_url = "https://openrouter.ai/api/v1"
            say("[2/4] Using the real OpenRouter API (OPENROUTER_API_KEY is set)")
            conn: dict[str, Any] = {"conn_type": "openrouter", "password": key}
        else:
            say(
                "[2/4] Starting the bundled OpenRouter emulator (set OPENROUTER_API_KEY to use the real API)"
            )
            emulator, base_url = start_emulator()
            key = EMULATOR_KEY
            conn = {"conn_type": "openrouter", "host": base_url, "password": key}
            say(f"    emulator at {base_url}")
        os.environ["AIRFLOW_CONN_OPENROUTER_DEFAULT"] = json.dumps(conn)
        last, as_of = last_complete_day(base_url, key)
        days = [last - timedelta(days=n) for n in (2, 1, 0)]
        say(f"    last complete UTC day: {last} (as_of {as_of})")

        say(
            f"[3/4] Running openrouter_daily through Airflow for {days[0]} .. {days[-1]} -> {output_uri}"
        )
        for number, day in enumerate(days, 1):
            logical = datetime.combine(
                day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc
            )
            say(f"  run {number}/4: day {day} (logical date {logical.isoformat()})")
            run_logged(
                [str(BIN / "airflow"), "dags", "test", "openrouter_daily", logical.isoformat()],
                LOGS / f"openrouter_daily-{day}.log",
                f"dags test {day}",
                RUN_TIMEOUT,
                progress=True,
            )

        now = datetime.now(timezone.utc).replace(microsecond=0)
        say(
            f"  run 4/4: openrouter_session_cost, the current weekly snapshot (logical date {now.isoformat()})"
        )
        run_logged(
            [str(BIN / "airflow"), "dags", "test", "openrouter_session_cost", now.isoformat()],
            LOGS / "openrouter_session_cost.log",
            "dags test session cost",
            RUN_TIMEOUT,
            progress=True,
        )

        say("[4/4] Report")
        from demo_report import report, report_session_cost

        report(output_uri, os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None, days)
        report_session_cost(output_uri, os.environ.get("OPENROUTER_OUTPUT_CONN_ID") or None)
        if local_root:
            after = snapshot(local_root)
            changed = sorted(name for name in after if before.get(name) != after[name])
            if not before:
                say(f"\nFirst run: {len(after)} files written under {local_root}.")
            elif not changed:
                say(
                    f"\nIdentical to the previous run: all {len(after)} files under {local_root} are byte for byte the same."
                )
            else:
                say(
                    f"\n{len(changed)} of {len(after)} files changed since the previous run (new days or restated data):"
                )
                for name in changed[:10]:
                    say(f"  {name}")
        say(f"Logs: {LOGS}. Finished in {time.monotonic() - started:.0f} s.")
        return 0
    finally:
        if emulator is not None:
            emulator.terminate()
            try:
                emulator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                emulator.kill()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
