"""Partitioned runs in process: ``dag.test()`` with a partition key and date, and what they left.

``dag.test()`` (Airflow 3.3) creates a manual run without partition; :func:`run_partition` sets the
run's ``partition_key``/``partition_date`` right after Airflow creates it, before any task runs, so
the tasks see exactly what a scheduled or backfill run of a ``CronPartitionTimetable`` gives them
(no logical date, no data interval).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "dags" / "openrouter_partitioned.py"
#: The emulator's clock: the last complete day it serves is 2026-02-28.
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)


def midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


@dataclass
class PartitionRun:
    dag_id: str
    run_id: str
    state: str
    partition_key: str | None
    task_states: dict[str, str | None]
    xcoms: dict[str, Any] = field(default_factory=dict)
    #: ``{"uri", "partition_key", "extra", "task_id"}`` per asset event of the run.
    asset_events: list[dict[str, Any]] = field(default_factory=list)

    def keys(self, uri: str) -> list[str | None]:
        return sorted((e["partition_key"] for e in self.asset_events if e["uri"] == uri), key=str)


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def collect(dag_id: str, run_id: str) -> PartitionRun:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        xcoms = {
            x.task_id: x.value
            for x in session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, key="return_value")
            .all()
        }
        events = [
            {
                "uri": uri,
                "partition_key": event.partition_key,
                "extra": event.extra,
                "task_id": event.source_task_id,
            }
            for event, uri in session.query(AssetEvent, AssetModel.uri)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
            .all()
        ]
        return PartitionRun(
            dag_id,
            run_id,
            str(_state(run.state)),
            run.partition_key,
            {ti.task_id: _state(ti.state) for ti in tis},
            xcoms,
            events,
        )


@pytest.fixture
def run_partition(dags_folder: Path) -> Callable[..., PartitionRun]:
    """``run_partition(dag_id, partition_key, partition_date=None)``: one partitioned run via ``dag.test()``."""
    from airflow.models import dagrun as dagrun_module

    from airflow_provider_openrouter.compat import DagBag

    def run(
        dag_id: str, partition_key: str | None, partition_date: datetime | None = None
    ) -> PartitionRun:
        bag = DagBag(dag_folder=str(dags_folder))
        dag = bag.get_dag(dag_id)
        if dag is None:
            raise AssertionError(
                f"DAG {dag_id!r} not found in {dags_folder}; import errors: {bag.import_errors}"
            )
        original = dagrun_module.get_or_create_dagrun

        def create(**kwargs: Any) -> Any:
            dag_run = original(**kwargs)
            dag_run.partition_key, dag_run.partition_date = partition_key, partition_date
            kwargs["session"].commit()
            return dag_run

        with mock.patch.object(dagrun_module, "get_or_create_dagrun", create):
            dag_run = dag.test(logical_date=None)
        return collect(dag_id, dag_run.run_id)

    return run
