"""The UTC days one DAG run covers, read from its Airflow context (data interval or partition).

Shared by the operators and the sensor; the pure rules live in :mod:`airflow_provider_openrouter.windows`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import DATASET_FLOOR, Window, days_for_interval
from airflow_provider_openrouter.windows.partitions import (
    PartitionSpec,
    days_for_partition,
    partition_spec,
)

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context


def partition_spec_of(timetable: Any) -> PartitionSpec | None:
    """The checked :class:`~airflow_provider_openrouter.windows.intervals.PartitionSpec` of a ``CronPartitionTimetable``
    (Task SDK or scheduler class); None for any other timetable. Raises
    :class:`InvalidParameterError` if its partitions are not whole UTC days."""
    if timetable is None or not any(
        c.__name__ == "CronPartitionTimetable" for c in type(timetable).__mro__
    ):
        return None

    def attr(name: str) -> Any:
        return (
            getattr(timetable, name, None)
            if hasattr(timetable, name)
            else getattr(timetable, "_" + name, None)
        )

    return partition_spec(attr("expression"), attr("timezone"), attr("key_format"))


def check_partition_schedule(task: BaseOperator) -> None:
    """At parse time, when the task's DAG is known: refuse a ``CronPartitionTimetable`` whose
    partitions are not whole UTC days (timezone, cron or key format), naming the task."""
    dag = task.dag if task.has_dag() else None
    if dag is None:
        return
    try:
        partition_spec_of(getattr(dag, "timetable", None))
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"Task {task.task_id!r} of DAG {dag.dag_id!r}: {exc}") from None


def is_partitioned_run(context: Context) -> bool:
    return context.get("partition_key") is not None or context.get("partition_date") is not None


def run_days(context: Context, no_window: str, floor: date | None = DATASET_FLOOR) -> Window | None:
    """The UTC days of the run, clamped to ``floor`` (by default the datasets' first day; ``None``
    keeps every day); None if all precede it.

    A partitioned run (``partition_key``/``partition_date`` in the context) covers its partition
    (:func:`~airflow_provider_openrouter.windows.intervals.days_for_partition`, with the DAG's
    ``CronPartitionTimetable`` when it has one); any other run its data interval
    (:func:`~airflow_provider_openrouter.windows.intervals.days_for_interval`). ``no_window`` is the
    message when the run has neither.
    """
    if is_partitioned_run(context):
        dag = context.get("dag") or getattr(context.get("task"), "dag", None)
        spec = partition_spec_of(getattr(dag, "timetable", None))
        return days_for_partition(
            context.get("partition_key"), context.get("partition_date"), spec, floor
        )
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise InvalidParameterError(no_window)
    return days_for_interval(start, end, floor)
