"""Partitioned runs: from a partition key or date to the UTC days the partition covers.

A run of a partitioned DAG (Airflow 3.2+: ``CronPartitionTimetable``, or a DAG on
``PartitionedAssetTimetable`` / ``PartitionedAtRuntime``) has no data interval: it has a
``partition_key`` (a string) and usually a ``partition_date`` (the instant the partition
starts). Pure functions, tested without Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import (
    DATASET_FLOOR,
    ONE_DAY,
    Window,
    clamp_to_floor,
    utc_midnight_date,
)

PARTITION_HINT = (
    'Schedule it on whole UTC days, e.g. schedule=CronPartitionTimetable("0 0 * * *", timezone="UTC", '
    'run_offset=-1, key_format="%Y-%m-%d") (a daily, weekly "0 0 * * 1" or monthly "0 0 1 * *" cron, from airflow.sdk).'
)

#: Zone names whose offset is zero at every instant (anything else may not bound UTC days).
UTC_ZONE_NAMES = frozenset(
    {
        "UTC",
        "Etc/UTC",
        "UCT",
        "Etc/UCT",
        "GMT",
        "Etc/GMT",
        "GMT0",
        "Etc/GMT0",
        "GMT+0",
        "Etc/GMT+0",
        "GMT-0",
        "Etc/GMT-0",
        "Greenwich",
        "Etc/Greenwich",
        "Universal",
        "Etc/Universal",
        "Zulu",
        "Etc/Zulu",
        "Z",
        "+00:00",
        "-00:00",
        "+0000",
        "-0000",
    }
)

#: Airflow's cron presets that can describe whole UTC days.
_CRON_PRESETS = {
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


def _add_months(day: date, months: int) -> date:
    total = day.month - 1 + months
    return day.replace(year=day.year + total // 12, month=total % 12 + 1)


def _cron_int(field: str, low: int, high: int) -> int | None:
    if field.isdigit() and low <= int(field) <= high:
        return int(field)
    return None


@dataclass(frozen=True)
class PartitionSpec:
    """The shape of a ``CronPartitionTimetable`` whose partitions are whole UTC days.

    Build it with :func:`partition_spec`, which refuses every cron, timezone or key format whose
    partitions would not map onto whole UTC days (or could not be told apart by their keys).
    """

    cron: str
    key_format: str
    #: ``daily``, ``weekly``, ``monthly``, ``quarterly`` or ``yearly``.
    period: str
    #: weekly: the cron weekday (0 = Sunday); others: None.
    weekday: int | None = None
    #: monthly / quarterly / yearly: the day of the month of each partition's first day.
    day_of_month: int | None = None
    #: yearly: the month of each partition's first day; quarterly: the first quarter's month.
    month: int | None = None

    def is_start(self, day: date) -> bool:
        """Whether a partition of this schedule starts on ``day`` (00:00 UTC)."""
        if self.period == "daily":
            return True
        if self.period == "weekly":
            return (day.weekday() + 1) % 7 == self.weekday
        if day.day != self.day_of_month:
            return False
        if self.period == "quarterly":
            return (day.month - (self.month or 1)) % 3 == 0
        if self.period == "yearly":
            return day.month == self.month
        return True

    def days_from(self, first: date) -> tuple[date, date]:
        """The first and last UTC day of the partition starting on ``first``."""
        if not self.is_start(first):
            raise InvalidParameterError(
                f"{first} is not the first day of a partition of cron {self.cron!r} ({self.period}): "
                "the run's partition_date does not belong to this schedule."
            )
        if self.period == "daily":
            return first, first
        if self.period == "weekly":
            return first, first + timedelta(days=6)
        return first, _add_months(first, _PERIOD_MONTHS[self.period]) - ONE_DAY

    def format_key(self, first: date) -> str:
        """The partition key Airflow gives the partition starting on ``first``."""
        return datetime.combine(first, time(0), tzinfo=timezone.utc).strftime(self.key_format)

    def parse_key(self, key: str) -> date:
        """The first day of the partition whose key is ``key``."""
        try:
            parsed = datetime.strptime(key, self.key_format)
        except ValueError:
            # strptime cannot read every format strftime writes (e.g. %V without %G); a key in one
            # of the temporal mappers' formats is still accepted when it is exactly what key_format writes
            try:
                first, _ = parse_partition_key(key)
            except InvalidParameterError:
                first = None
            if first is not None and self.format_key(first) == key:
                return first
            raise InvalidParameterError(
                f"partition_key={key!r} does not match the timetable's key_format {self.key_format!r}."
            ) from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        if parsed.time() != time(0):
            raise InvalidParameterError(
                f"partition_key={key!r} is not at 00:00 UTC, so it does not start a UTC day."
            )
        return parsed.date()


def _timezone_name(tz: object) -> str:
    if isinstance(tz, str):
        return tz
    name = getattr(tz, "name", None) or getattr(tz, "key", None)
    if isinstance(name, str):
        return name
    return str(tz)


def partition_spec(cron: str, tz: object, key_format: str) -> PartitionSpec:
    """Check that a ``CronPartitionTimetable(cron, timezone=tz, key_format=...)`` partitions whole UTC days.

    Accepted: a cron firing at 00:00 only, daily (``0 0 * * *``), weekly on one weekday
    (``0 0 * * 1``), monthly on one day 1-28 (``0 0 1 * *``), quarterly (``0 0 1 */3 *``) or yearly
    (``0 0 1 1 *``), or the matching ``@daily``/``@weekly``/... preset; a timezone whose offset is
    always zero (``UTC``); a ``key_format`` that turns every partition's first instant into a
    distinct key and back (``%Y-%m-%d`` for days and weeks, ``%Y-%m`` suffices for months).
    Anything else raises :class:`InvalidParameterError` saying why and what works.
    """
    return _partition_spec(cron, _timezone_name(tz), key_format)


@lru_cache(maxsize=64)
def _partition_spec(cron: str, zone: str, key_format: str) -> PartitionSpec:
    if zone not in UTC_ZONE_NAMES:
        raise InvalidParameterError(
            f"The partition timetable's timezone is {zone!r}: its partitions start at local midnight, "
            "which is not 00:00 UTC for the whole year, so they do not map onto UTC days "
            '(OpenRouter\'s datasets are per UTC day). Use timezone="UTC". ' + PARTITION_HINT
        )
    if not isinstance(cron, str) or not cron.strip():
        raise InvalidParameterError(f"cron {cron!r} is not a cron expression. " + PARTITION_HINT)
    expression = _CRON_PRESETS.get(cron.strip().lower(), cron.strip())
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidParameterError(
            f"cron {cron!r} is not a five-field cron expression that fires at 00:00 UTC. "
            + PARTITION_HINT
        )
    minute, hour, dom, month, dow = (f.lower() for f in fields)
    if _cron_int(minute, 0, 0) is None or _cron_int(hour, 0, 0) is None:
        raise InvalidParameterError(
            f"cron {cron!r} does not fire at 00:00 only, so its partitions do not cover whole UTC days. "
            + PARTITION_HINT
        )
    period: str | None = None
    weekday = day_of_month = first_month = None
    if dom == "*" and month == "*" and dow == "*":
        period = "daily"
    elif dom == "*" and month == "*":
        value = _WEEKDAYS[dow] if dow in _WEEKDAYS else _cron_int(dow, 0, 7)
        if value is not None:
            period, weekday = "weekly", value % 7
    elif dow == "*" and (day_of_month := _cron_int(dom, 1, 28)) is not None:
        if month == "*":
            period = "monthly"
        elif month in ("*/3", "1-12/3"):
            period, first_month = "quarterly", 1
        elif (first_month := _cron_int(month, 1, 12)) is not None:
            period = "yearly"
    if period is None:
        raise InvalidParameterError(
            f"cron {cron!r} is not a daily, weekly (one weekday), monthly (one day 1-28), quarterly or yearly "
            "schedule at 00:00 UTC, so its partitions are not a fixed run of whole UTC days. "
            + PARTITION_HINT
        )
    spec = PartitionSpec(expression, key_format, period, weekday, day_of_month, first_month)
    _check_key_format(spec)
    return spec


def _check_key_format(spec: PartitionSpec) -> None:
    fmt = spec.key_format
    if not isinstance(fmt, str) or "%" not in fmt:
        raise InvalidParameterError(
            f"key_format={fmt!r} has no date directive, so every partition would get the same key. "
            'Use key_format="%Y-%m-%d".'
        )
    starts = _all_starts(spec)
    seen: dict[str, date] = {}
    for first in starts:
        key = spec.format_key(first)
        try:
            back = spec.parse_key(key)
        except InvalidParameterError:
            back = None
        if back != first:
            raise InvalidParameterError(
                f"key_format={fmt!r} does not map {spec.period} partitions onto UTC days: the partition starting "
                f"{first} gets the key {key!r}, which does not read back as {first}"
                f"{'' if back is None else f' (it reads as {back})'}. "
                'Use key_format="%Y-%m-%d" (or one with year, month and day).'
            )
        if key in seen:  # unreachable when every key reads back, kept as a guard
            raise InvalidParameterError(
                f"key_format={fmt!r} gives {seen[key]} and {first} the same key {key!r}."
            )
        seen[key] = first


def _all_starts(spec: PartitionSpec) -> list[date]:
    """Every partition start from 2023-12-01 to 2025-03-31 (includes a leap day and two year ends)."""
    out: list[date] = []
    day = date(2023, 12, 1)
    while day <= date(2025, 3, 31):
        if spec.is_start(day):
            out.append(day)
        day += ONE_DAY
    return out


def days_for_partition(
    partition_key: str | None,
    partition_date: datetime | None,
    spec: PartitionSpec | None = None,
    floor: date | None = DATASET_FLOOR,
) -> Window | None:
    """The UTC days of a partitioned run, clamped to ``floor`` (see
    :func:`~airflow_provider_openrouter.windows.intervals.clamp_to_floor`); ``None`` if all precede it.

    * With ``spec`` (the run's DAG is on a ``CronPartitionTimetable``, checked by
      :func:`partition_spec`): the partition that starts at ``partition_date`` (00:00 UTC), or at
      the instant ``partition_key`` reads as when there is no date; the key must be the one the
      timetable gives that partition.
    * Without (``PartitionedAssetTimetable``, ``PartitionedAtRuntime``, a manual trigger): the
      key itself says the days, in the formats of Airflow's temporal mappers: ``YYYY-MM-DD`` (one
      UTC day, ``StartOfDayMapper``), ``YYYY-MM-DD (Www)`` (the ISO week starting that Monday,
      ``StartOfWeekMapper``) or ``YYYY-MM`` (the month, ``StartOfMonthMapper``); a
      ``partition_date``, if any, must be that period's first instant at 00:00 UTC (a mapper in
      another timezone is refused here).
    """
    if spec is not None:
        if partition_date is not None:
            first = _partition_midnight(partition_date)
            if partition_key is not None and partition_key != spec.format_key(first):
                raise InvalidParameterError(
                    f"partition_key={partition_key!r} is not the key of the partition starting {first} "
                    f"({spec.format_key(first)!r} with key_format {spec.key_format!r})."
                )
        elif partition_key is not None:
            first = spec.parse_key(partition_key)
            if spec.format_key(first) != partition_key:
                raise InvalidParameterError(
                    f"partition_key={partition_key!r} is not written the way key_format {spec.key_format!r} "
                    f"writes it ({spec.format_key(first)!r})."
                )
        else:
            raise InvalidParameterError(
                "This run has neither a partition_key nor a partition_date."
            )
        return clamp_to_floor(*spec.days_from(first), floor)
    if partition_key is None:
        raise InvalidParameterError("This run has no partition_key, so it names no UTC days.")
    first, last = parse_partition_key(partition_key)
    if partition_date is not None and _partition_midnight(partition_date) != first:
        raise InvalidParameterError(
            f"partition_key={partition_key!r} starts on {first} but the run's partition_date is "
            f"{partition_date.isoformat()}: the partition mapper is not in UTC, so its partitions are not UTC days."
        )
    return clamp_to_floor(first, last, floor)


def parse_partition_key(key: str) -> tuple[date, date]:
    """First and last UTC day of a key in a temporal mapper's default format (see :func:`days_for_partition`)."""
    text = key.strip() if isinstance(key, str) else key
    try:
        if isinstance(text, str) and len(text) == 10:
            day = date.fromisoformat(text)
            return day, day
        if (
            isinstance(text, str)
            and len(text) == 16
            and text[10:13] == " (W"
            and text.endswith(")")
        ):
            monday = date.fromisoformat(text[:10])
            week = int(text[13:15])
            if monday.weekday() != 0 or monday.isocalendar()[1] != week:
                raise ValueError(text)
            return monday, monday + timedelta(days=6)
        if isinstance(text, str) and len(text) == 7 and text[4] == "-":
            first = date(int(text[:4]), int(text[5:7]), 1)
            return first, _add_months(first, 1) - ONE_DAY
    except ValueError:
        pass
    raise InvalidParameterError(
        f"partition_key={key!r} names no UTC days: expected YYYY-MM-DD (a day), 'YYYY-MM-DD (Www)' (the ISO week "
        "starting that Monday, as StartOfWeekMapper writes it) or YYYY-MM (a month). For other keys set "
        "window_start and window_end (templated from {{ dag_run.partition_key }})."
    )


def _partition_midnight(value: datetime) -> date:
    return utc_midnight_date(value, "partition_date", PARTITION_HINT)
