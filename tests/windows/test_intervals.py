"""windows: data interval -> UTC days, exhaustively, without Airflow."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import (
    Window,
    chunks,
    clamp_to_floor,
    day_complete_at,
    days_for_interval,
    last_complete_day,
    parse_day,
)

UTC = timezone.utc


def at(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC)


def test_daily_interval_is_its_start_day() -> None:
    assert days_for_interval(at(2025, 7, 4), at(2025, 7, 5)) == Window(
        date(2025, 7, 4), date(2025, 7, 4)
    )


def test_multi_day_interval_excludes_end() -> None:
    w = days_for_interval(at(2025, 7, 1), at(2025, 7, 8))
    assert (w.start, w.end, w.days) == (date(2025, 7, 1), date(2025, 7, 7), 7)
    assert list(w.iter_days())[-1] == date(2025, 7, 7)


def test_zero_length_interval_is_the_day_ending_at_the_logical_date() -> None:
    assert days_for_interval(at(2025, 7, 5), at(2025, 7, 5)) == Window(
        date(2025, 7, 4), date(2025, 7, 4)
    )


@pytest.mark.parametrize(
    "start,end",
    [
        (at(2025, 7, 4, 6), at(2025, 7, 5, 6)),
        (at(2025, 7, 4), at(2025, 7, 5, 0, 30)),
        (at(2025, 7, 4, 1), at(2025, 7, 4, 1)),
    ],
)
def test_boundaries_off_midnight_are_an_error_naming_the_timetable(
    start: datetime, end: datetime
) -> None:
    with pytest.raises(InvalidParameterError, match="CronDataIntervalTimetable"):
        days_for_interval(start, end)


def test_non_utc_timezone_at_utc_midnight_is_accepted() -> None:
    start = pendulum.datetime(2025, 7, 4, 2, tz="Europe/Paris")  # 00:00 UTC
    end = pendulum.datetime(2025, 7, 5, 2, tz="Europe/Paris")
    assert days_for_interval(start, end) == Window(date(2025, 7, 4), date(2025, 7, 4))


def test_local_midnight_that_is_not_utc_midnight_is_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="00:00 UTC"):
        days_for_interval(
            pendulum.datetime(2025, 7, 4, tz="Europe/Paris"),
            pendulum.datetime(2025, 7, 5, tz="Europe/Paris"),
        )


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="timezone"):
        days_for_interval(datetime(2025, 7, 4), datetime(2025, 7, 5))


def test_reversed_interval_is_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="before it starts"):
        days_for_interval(at(2025, 7, 5), at(2025, 7, 4))


def test_window_entirely_before_floor_is_none() -> None:
    assert days_for_interval(at(2024, 12, 1), at(2025, 1, 1)) is None
    assert (
        days_for_interval(at(2025, 1, 1), at(2025, 1, 1)) is None
    )  # zero-length: the day 2024-12-31


def test_window_straddling_floor_is_clamped_and_says_so() -> None:
    w = days_for_interval(at(2024, 12, 25), at(2025, 1, 3))
    assert w == Window(date(2025, 1, 1), date(2025, 1, 2), clamped_from=date(2024, 12, 25))
    assert w.clamped_from == date(2024, 12, 25)


def test_every_day_of_two_years_maps_to_itself() -> None:
    day = date(2025, 1, 1)
    while day < date(2027, 1, 1):
        start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        w = days_for_interval(start, start + timedelta(days=1))
        assert (w.start, w.end, w.clamped_from) == (day, day, None)
        day += timedelta(days=1)


def test_clamp_to_floor_keeps_windows_after_floor() -> None:
    assert clamp_to_floor(date(2025, 2, 1), date(2025, 2, 3)) == Window(
        date(2025, 2, 1), date(2025, 2, 3)
    )


@pytest.mark.parametrize("days", [1, 2, 365, 366, 367, 400, 732, 733, 1000])
def test_chunks_cover_the_window_exactly_with_at_most_366_days(days: int) -> None:
    w = Window(date(2025, 1, 1), date(2025, 1, 1) + timedelta(days=days - 1))
    parts = chunks(w)
    assert len(parts) == -(-days // 366)
    assert parts[0].start == w.start and parts[-1].end == w.end
    assert all(p.days <= 366 for p in parts)
    assert all(b.start == a.end + timedelta(days=1) for a, b in zip(parts, parts[1:]))
    assert sum(p.days for p in parts) == days


def test_chunks_reject_nonpositive_size() -> None:
    with pytest.raises(InvalidParameterError):
        chunks(Window(date(2025, 1, 1), date(2025, 1, 2)), size=0)


def test_window_rejects_reversed_days() -> None:
    with pytest.raises(InvalidParameterError, match="after its end"):
        Window(date(2025, 1, 2), date(2025, 1, 1))


def test_completion_instant_and_last_complete_day_agree() -> None:
    day = date(2025, 7, 4)
    assert day_complete_at(day) == at(2025, 7, 5)
    assert day_complete_at(day, timedelta(hours=2)) == at(2025, 7, 5, 2)
    assert last_complete_day(at(2025, 7, 5)) == day
    assert last_complete_day(at(2025, 7, 4, 23, 59)) == date(2025, 7, 3)
    assert last_complete_day(at(2025, 7, 5, 1), settle=timedelta(hours=2)) == date(2025, 7, 3)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2025-03-01", date(2025, 3, 1)),
        (date(2025, 3, 1), date(2025, 3, 1)),
        (at(2025, 3, 1), date(2025, 3, 1)),
    ],
)
def test_parse_day_accepts_dates_strings_and_midnights(value: object, expected: date) -> None:
    assert parse_day(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["2025-3-1", "2025-02-30", "20250301", "yesterday", 20250301, None]
)
def test_parse_day_rejects_everything_else(value: object) -> None:
    with pytest.raises(InvalidParameterError):
        parse_day(value, "start_date")  # type: ignore[arg-type]
