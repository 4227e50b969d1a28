"""Time: UTC days, the windows a run or a request covers, and partitioned runs' days.

Two pure modules: :mod:`.intervals` (data intervals, request windows, completeness instants) and
:mod:`.partitions` (partition timetables and keys). Both are re-exported here.
"""

from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.windows.intervals import (
    DATASET_FLOOR,
    MAX_WINDOW_DAYS,
    ONE_DAY,
    TIMETABLE_HINT,
    Window,
    as_utc,
    chunks,
    clamp_to_floor,
    day_complete_at,
    days_for_interval,
    last_complete_day,
    parse_day,
    utc_midnight_date,
)

if TYPE_CHECKING:
    from airflow_provider_openrouter.windows.partitions import (
        PARTITION_HINT,
        UTC_ZONE_NAMES,
        PartitionSpec,
        days_for_partition,
        parse_partition_key,
        partition_spec,
    )

#: Re-exported from :mod:`.partitions` on first access, so that importing :mod:`.intervals` (the
#: hook does) does not load the partition module as well.
_FROM_PARTITIONS = frozenset(
    {
        "PARTITION_HINT",
        "UTC_ZONE_NAMES",
        "PartitionSpec",
        "days_for_partition",
        "parse_partition_key",
        "partition_spec",
    }
)

__all__ = [
    "DATASET_FLOOR",
    "MAX_WINDOW_DAYS",
    "ONE_DAY",
    "PARTITION_HINT",
    "TIMETABLE_HINT",
    "UTC_ZONE_NAMES",
    "PartitionSpec",
    "Window",
    "as_utc",
    "chunks",
    "clamp_to_floor",
    "day_complete_at",
    "days_for_interval",
    "days_for_partition",
    "last_complete_day",
    "parse_day",
    "parse_partition_key",
    "partition_spec",
    "utc_midnight_date",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_PARTITIONS:
        from airflow_provider_openrouter.windows import partitions

        value = getattr(partitions, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_PARTITIONS)
