"""A private Airflow installation run as real processes, for the tests that need Airflow's own
scheduler: a temp ``AIRFLOW_HOME`` (SQLite, LocalExecutor), daemons in their own process groups,
their logs, bounded waits that show the logs when they fail, and a teardown that kills everything."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

VENV_BIN = Path(sys.executable).parent


@dataclass
class Stack:
    """The processes of one test, their logs, and how to stop all of them."""

    home: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    files: list[IO[bytes]] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], *, capture_stdout: bool = False
    ) -> subprocess.Popen[bytes]:
        log = self.home / f"{name}.log"
        out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.files.append(out)
        self.logs[name] = log
        proc = subprocess.Popen(
            argv,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else out,
            stderr=out,
            start_new_session=True,  # its own process group: killed as a whole in stop()
        )
        self.procs[name] = proc
        return proc

    def run(self, *args: str, timeout: float = 120) -> str:
        """Run one ``airflow`` CLI command to completion; fail with its output if it fails."""
        done = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    def start_emulator(self, *args: str) -> str:
        """Start the bundled emulator (CLI) with ``args``; return its base URL."""
        proc = self.start(
            "emulator",
            [
                sys.executable,
                "-m",
                "airflow_provider_openrouter.testing.emulator",
                "--port",
                "0",
                *args,
            ],
            capture_stdout=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            raise AssertionError(
                f"the emulator did not print its base URL (got {line!r}).\n{self.tails()}"
            )
        return line

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}.\n{self.tails()}")

    def tails(self, lines: int = 30) -> str:
        out = []
        for name, path in self.logs.items():
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            out += [f"----- {name}: last {lines} lines of {path} -----", *text[-lines:]]
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM each process group (last started first), SIGKILL what is left, then any
        descendant that left its group."""
        import psutil

        tracked: dict[int, Any] = {}
        for proc in self.procs.values():
            try:
                root = psutil.Process(proc.pid)
                tracked[root.pid] = root
                tracked.update({child.pid: child for child in root.children(recursive=True)})
            except psutil.Error:
                pass
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for process in tracked.values():
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
            except psutil.Error:
                pass
        for f in self.files:
            f.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def airflow_env(home: Path, api_port: int) -> dict[str, str]:
    """The environment of a private installation under ``home`` (no AIRFLOW_*/OPENROUTER_* leaks in)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "_AIRFLOW", "OPENROUTER_"))
    }
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            # a generous busy timeout: the daemons and the CLI share one SQLite file
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(16),
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def wait_for(what: str, predicate: Any, timeout: float, stack: Stack, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it is truthy; fail after ``timeout`` (or when a daemon died) with the logs."""
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        try:
            value = predicate()
        except sqlite3.Error:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Timed out after {timeout:.0f} s waiting for {what}.\n{stack.tails()}"
            )
        time.sleep(interval)


def emulator_requests(base_url: str) -> list[dict[str, Any]]:
    """The emulator's request log, through its control endpoint."""
    import httpx

    root = base_url.rsplit("/api/v1", 1)[0]
    return httpx.get(f"{root}/_emulator/requests", timeout=10).json()["requests"]
