"""Observe real DAG runs: every OpenLineage event they emit and every StatsD metric they send.

``observe(dag_id, tmp_path, monkeypatch)`` points the Airflow environment at an OpenLineage file
transport (one JSON event per line) and at a StatsD UDP socket listening on loopback (influxdb-style
tags, so tags are on the wire), and returns an :class:`Observer`. ``Observer.run(logical_date)``
runs the DAG through ``dag.test`` in a fresh process (``observed_dag_run.py``), so the OpenLineage
plugin and ``Stats`` start with these settings, then collects the events and metrics of that run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).with_name("observed_dag_run.py")


@dataclass(frozen=True)
class Metric:
    name: str
    tags: dict[str, str]
    value: float
    kind: str


@dataclass
class Observer:
    """Runs a DAG in a fresh process and keeps what its last run emitted: lineage events and metrics."""

    dag_id: str
    events_file: Path
    statsd: socket.socket
    events: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)

    def run(self, logical_date: str) -> None:
        """Run the DAG for a logical date (``YYYY-MM-DD``, midnight UTC); it must succeed."""
        self.events_file.write_text("")
        self._drain()
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), self.dag_id, f"{logical_date}T00:00:00+00:00"],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ.copy(),
        )
        assert proc.returncode == 0 and "STATE=success" in proc.stdout, (proc.stdout + proc.stderr)[
            -4000:
        ]
        self.events = [
            json.loads(line) for line in self.events_file.read_text().splitlines() if line.strip()
        ]
        self.metrics = self._drain()

    def _drain(self) -> list[Metric]:
        out = []
        self.statsd.setblocking(False)
        while True:
            try:
                packet = self.statsd.recv(65535).decode()
            except BlockingIOError:
                return out
            for line in packet.splitlines():
                head, _, rest = line.partition(":")
                value, _, kind = rest.partition("|")
                name, *tags = head.split(",")
                out.append(
                    Metric(
                        name, dict(t.split("=", 1) for t in tags), float(value), kind.split("|")[0]
                    )
                )

    def complete(self, task_id: str) -> dict[str, Any]:
        """The one COMPLETE event of a task of the run."""
        found = [
            e
            for e in self.events
            if e.get("eventType") == "COMPLETE"
            and e.get("job", {}).get("name") == f"{self.dag_id}.{task_id}"
        ]
        assert len(found) == 1, [
            (e.get("eventType"), e.get("job", {}).get("name")) for e in self.events
        ]
        return found[0]

    def ours(self, name: str, **tags: str) -> list[Metric]:
        """This provider's metrics named ``openrouter.<name>`` whose tags include ``tags``."""
        return [
            m
            for m in self.metrics
            if m.name == f"airflow.openrouter.{name}"
            and all(m.tags.get(k) == v for k, v in tags.items())
        ]

    def total(self, name: str, **tags: str) -> float:
        return sum(m.value for m in self.ours(name, **tags))


def observe(dag_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Observer:
    """Configure OpenLineage (file transport) and StatsD (a loopback socket) for runs of ``dag_id``.

    The caller closes ``observer.statsd`` (the fixtures do).
    """
    events = tmp_path / "openlineage.jsonl"
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "lake_tests")
    settings = {
        "STATSD_ON": "True",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(listener.getsockname()[1]),
        "STATSD_PREFIX": "airflow",
        "STATSD_INFLUXDB_ENABLED": "True",
    }
    for key, value in settings.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
    return Observer(dag_id, events, listener)


def stored_xcom(dag_id: str, task_id: str, key: str) -> Any:
    """The newest XCom of a task under ``key`` in the metadata DB (None if none), e.g. an extra
    link (``_link_<LinkClass>``) as the task runner resolved it for the UI."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, task_id=task_id, key=key)
            .order_by(XComModel.timestamp.desc())
            .first()
        )
        return None if row is None else row.value
