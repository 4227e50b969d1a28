"""Time: UTC days, the windows a run or a request covers, and partitioned runs' days.

Two pure modules: :mod:`.intervals` (data intervals, request windows, completeness instants) and
:mod:`.partitions` (partition timetables and keys). Both are re-exported here.
"""

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
from airflow_provider_openrouter.windows.partitions import (
    PARTITION_HINT,
    UTC_ZONE_NAMES,
    PartitionSpec,
    days_for_partition,
    parse_partition_key,
    partition_spec,
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
