"""From a DAG run's data interval to the UTC days it covers, and from days to API requests.

Pure functions, shared by the operators and the sensor, tested exhaustively without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from airflow_provider_openrouter.exceptions import InvalidParameterError

ONE_DAY = timedelta(days=1)
#: The first day of every OpenRouter dataset; earlier days do not exist.
DATASET_FLOOR = date(2025, 1, 1)
#: The longest window (in days, inclusive) one request may ask for.
MAX_WINDOW_DAYS = 366

TIMETABLE_HINT = (
    "Schedule the DAG on whole UTC days, e.g. "
    'schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC") '
    "(from airflow.timetables.interval)."
)


@dataclass(frozen=True)
class Window:
    """An inclusive range of UTC days, ``start`` to ``end``."""

    start: date
    end: date
    #: Days requested before the dataset's first day and dropped from the window.
    clamped_from: date | None = None

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise InvalidParameterError(f"window start {self.start} is after its end {self.end}.")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def iter_days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += ONE_DAY

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def parse_day(value: date | datetime | str, name: str = "date") -> date:
    """Accept a ``date``, a UTC ``datetime`` at midnight or a ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return utc_midnight_date(value, name)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            if len(value) != 10:
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidParameterError(
                f"{name}={value!r} is not a calendar date; use YYYY-MM-DD (UTC)."
            ) from None
    raise InvalidParameterError(
        f"{name} must be a date or a YYYY-MM-DD string, not {type(value).__name__}."
    )


def as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidParameterError(
            f"{name}={value.isoformat()} has no timezone; Airflow passes aware datetimes."
        )
    return value.astimezone(timezone.utc)


def utc_midnight_date(value: datetime, name: str, hint: str = TIMETABLE_HINT) -> date:
    """The UTC date of an aware ``value`` at 00:00 UTC; anything else is an error naming ``name``."""
    utc = as_utc(value, name)
    if utc.time() != time(0):
        raise InvalidParameterError(
            f"{name}={utc.isoformat()} is not at 00:00 UTC, so it does not bound whole UTC days. "
            + hint
        )
    return utc.date()


def days_for_interval(
    start: datetime, end: datetime, floor: date | None = DATASET_FLOOR
) -> Window | None:
    """The UTC days a run covers, clamped to ``floor`` (the public datasets' first day; ``None``:
    no floor, e.g. for the organisation's own analytics); ``None`` if all precede it.

    * ``[start, end)`` with both at 00:00 UTC covers ``start.date() .. end.date() - 1``.
    * A zero-length interval (``start == end``; Airflow 3's default ``@daily`` is a
      ``CronTriggerTimetable``) covers the one UTC day that ends at that instant.
    * Anything else is an :class:`InvalidParameterError` that says which timetable to use.
    """
    first = utc_midnight_date(start, "data_interval_start")
    stop = utc_midnight_date(end, "data_interval_end")
    if stop < first:
        raise InvalidParameterError(f"data interval ends ({stop}) before it starts ({first}).")
    if stop == first:
        first = first - ONE_DAY
    last = stop - ONE_DAY
    return clamp_to_floor(first, last, floor)


def clamp_to_floor(first: date, last: date, floor: date | None = DATASET_FLOOR) -> Window | None:
    """``first..last`` without the days before ``floor`` (default :data:`DATASET_FLOOR`; ``None``
    keeps every day); ``None`` if none remain."""
    if floor is None:
        return Window(first, last)
    if last < floor:
        return None
    if first < floor:
        return Window(floor, last, clamped_from=first)
    return Window(first, last)


def chunks(window: Window, size: int = MAX_WINDOW_DAYS) -> list[Window]:
    """Split a window into consecutive windows of at most ``size`` days (one request each)."""
    if size < 1:
        raise InvalidParameterError("chunk size must be at least one day.")
    out: list[Window] = []
    start = window.start
    while start <= window.end:
        end = min(window.end, start + timedelta(days=size - 1))
        out.append(Window(start, end))
        start = end + ONE_DAY
    return out


def day_complete_at(day: date, settle: timedelta = timedelta(0)) -> datetime:
    """The instant from which ``as_of`` can prove ``day`` final: the next UTC midnight plus ``settle``."""
    return datetime.combine(day + ONE_DAY, time(0), tzinfo=timezone.utc) + settle


def last_complete_day(as_of: datetime, settle: timedelta = timedelta(0)) -> date:
    """The latest UTC day that a snapshot taken at ``as_of`` covers completely."""
    return (as_utc(as_of, "as_of") - settle).date() - ONE_DAY
