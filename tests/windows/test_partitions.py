"""windows: partitioned runs -> UTC days, exhaustively, without Airflow."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pendulum
import pytest

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import Window
from airflow_provider_openrouter.windows.partitions import (
    days_for_partition,
    parse_partition_key,
    partition_spec,
)

UTC = timezone.utc
ONE_DAY = timedelta(days=1)


def at(y: int, m: int, d: int, h: int = 0, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC)


def w(a: str, b: str) -> Window:
    return Window(date.fromisoformat(a), date.fromisoformat(b))


DAILY = partition_spec("0 0 * * *", "UTC", "%Y-%m-%d")


# ---------------------------------------------------------------------- accepted schedules
@pytest.mark.parametrize(
    "cron,period",
    [
        ("0 0 * * *", "daily"),
        ("@daily", "daily"),
        ("@midnight", "daily"),
        ("00 00 * * *", "daily"),
        ("0 0 * * 1", "weekly"),
        ("0 0 * * mon", "weekly"),
        ("0 0 * * MON", "weekly"),
        ("0 0 * * 0", "weekly"),
        ("0 0 * * 7", "weekly"),
        ("@weekly", "weekly"),
        ("0 0 1 * *", "monthly"),
        ("@monthly", "monthly"),
        ("0 0 15 * *", "monthly"),
        ("0 0 28 * *", "monthly"),
        ("0 0 1 */3 *", "quarterly"),
        ("@quarterly", "quarterly"),
        ("0 0 1 1 *", "yearly"),
        ("@yearly", "yearly"),
        ("@annually", "yearly"),
    ],
)
def test_daily_weekly_monthly_quarterly_yearly_crons_at_midnight_are_accepted(
    cron: str, period: str
) -> None:
    assert partition_spec(cron, "UTC", "%Y-%m-%d").period == period


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "Etc/UTC",
        "GMT",
        "Etc/GMT",
        "Z",
        "Zulu",
        "+00:00",
        pendulum.timezone("UTC"),
        pendulum.timezone("Etc/UTC"),
        pendulum.FixedTimezone(0),
    ],
)
def test_zero_offset_timezones_are_accepted(tz: object) -> None:
    assert partition_spec("0 0 * * *", tz, "%Y-%m-%d").period == "daily"


@pytest.mark.parametrize(
    "cron,fmt",
    [
        ("0 0 * * *", "%Y-%m-%d"),
        ("0 0 * * *", "%Y%m%d"),
        ("0 0 * * *", "%d/%m/%Y"),
        ("0 0 * * *", "%Y-%j"),
        ("0 0 * * *", "%Y-%m-%dT%H:%M:%S"),
        ("0 0 * * *", "%Y-%m-%dT%H:%M:%S%z"),
        ("0 0 * * *", "%G-W%V-%u"),
        ("0 0 * * *", "day=%Y-%m-%d"),
        ("0 0 * * 1", "%Y-%m-%d"),
        ("0 0 * * 1", "%Y-%m-%d (W%V)"),
        ("0 0 * * 1", "%G-W%V-%u"),
        ("0 0 1 * *", "%Y-%m"),
        ("0 0 1 * *", "%Y-%m-%d"),
        ("0 0 1 */3 *", "%Y-%m"),
        ("0 0 1 1 *", "%Y"),
    ],
)
def test_key_formats_that_name_each_partition_are_accepted(cron: str, fmt: str) -> None:
    spec = partition_spec(cron, "UTC", fmt)
    day = date(2025, 1, 1)
    while day < date(2026, 1, 1):  # every key of a year reads back as its partition
        if spec.is_start(day):
            assert days_for_partition(spec.format_key(day), None, spec) == days_for_partition(
                None, at(day.year, day.month, day.day), spec
            )
        day += ONE_DAY


# ---------------------------------------------------------------------- refused schedules
@pytest.mark.parametrize(
    "tz",
    [
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "Europe/London",
        pendulum.timezone("Europe/Paris"),
        pendulum.FixedTimezone(3600),
        "+01:00",
    ],
)
def test_timezones_other_than_utc_are_refused(tz: object) -> None:
    with pytest.raises(InvalidParameterError, match="timezone.*UTC"):
        partition_spec("0 0 * * *", tz, "%Y-%m-%d")


@pytest.mark.parametrize(
    "cron",
    [
        "0 * * * *",
        "30 0 * * *",
        "0 1 * * *",
        "0 23 * * *",
        "*/5 * * * *",
        "@hourly",
        "0 0,12 * * *",
    ],
)
def test_crons_firing_off_midnight_are_refused(cron: str) -> None:
    with pytest.raises(InvalidParameterError, match="00:00"):
        partition_spec(cron, "UTC", "%Y-%m-%d")


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 * * 1-5",
        "0 0 * * 1,3",
        "0 0 */2 * *",
        "0 0 31 * *",
        "0 0 29 * *",
        "0 0 1,15 * *",
        "0 0 1 * 1",
        "0 0 1 2-4 *",
        "0 0 L * *",
        "0 0 * 1 *",
    ],
)
def test_irregular_day_schedules_are_refused(cron: str) -> None:
    with pytest.raises(InvalidParameterError, match="daily, weekly"):
        partition_spec(cron, "UTC", "%Y-%m-%d")


@pytest.mark.parametrize("cron", ["", "   ", "0 0 * *", "0 0 * * * *", "not a cron"])
def test_malformed_crons_are_refused(cron: str) -> None:
    with pytest.raises(InvalidParameterError, match="cron"):
        partition_spec(cron, "UTC", "%Y-%m-%d")


@pytest.mark.parametrize(
    "cron,fmt",
    [
        ("0 0 * * *", "%Y-%m"),
        ("0 0 * * *", "%m-%d"),
        ("0 0 * * *", "%Y-%U"),
        ("0 0 * * *", "%d"),
        ("0 0 * * 1", "%Y-W%V"),
        ("0 0 * * 1", "%Y-%m"),
        ("0 0 1 * *", "%Y"),
        ("0 0 1 */3 *", "%Y"),
    ],
)
def test_key_formats_that_merge_partitions_are_refused(cron: str, fmt: str) -> None:
    with pytest.raises(InvalidParameterError, match="does not map .* onto UTC days"):
        partition_spec(cron, "UTC", fmt)


@pytest.mark.parametrize("fmt", ["", "static", "2025"])
def test_key_formats_without_a_date_are_refused(fmt: str) -> None:
    with pytest.raises(InvalidParameterError, match="no date directive"):
        partition_spec("0 0 * * *", "UTC", fmt)


# ---------------------------------------------------------------------- the days of a partition
@pytest.mark.parametrize(
    "cron,start,expected",
    [
        ("0 0 * * *", "2025-03-01", w("2025-03-01", "2025-03-01")),
        ("0 0 * * *", "2028-02-29", w("2028-02-29", "2028-02-29")),
        ("0 0 * * 1", "2025-03-03", w("2025-03-03", "2025-03-09")),
        ("0 0 * * 1", "2025-12-29", w("2025-12-29", "2026-01-04")),
        ("0 0 * * 0", "2025-03-02", w("2025-03-02", "2025-03-08")),
        ("0 0 1 * *", "2028-02-01", w("2028-02-01", "2028-02-29")),
        ("0 0 1 * *", "2025-02-01", w("2025-02-01", "2025-02-28")),
        ("0 0 1 * *", "2025-12-01", w("2025-12-01", "2025-12-31")),
        ("0 0 15 * *", "2025-01-15", w("2025-01-15", "2025-02-14")),
        ("0 0 15 * *", "2025-12-15", w("2025-12-15", "2026-01-14")),
        ("0 0 1 */3 *", "2025-10-01", w("2025-10-01", "2025-12-31")),
        ("0 0 1 1 *", "2025-01-01", w("2025-01-01", "2025-12-31")),
    ],
)
def test_each_period_covers_its_whole_utc_days(cron: str, start: str, expected: Window) -> None:
    spec = partition_spec(cron, "UTC", "%Y-%m-%d")
    first = date.fromisoformat(start)
    assert days_for_partition(start, at(first.year, first.month, first.day), spec) == expected
    assert days_for_partition(start, None, spec) == expected


def test_consecutive_partitions_tile_the_calendar_without_gap_or_overlap() -> None:
    for cron in (
        "0 0 * * *",
        "0 0 * * 1",
        "0 0 * * 0",
        "0 0 1 * *",
        "0 0 10 * *",
        "0 0 1 */3 *",
        "0 0 1 1 *",
    ):
        spec = partition_spec(cron, "UTC", "%Y-%m-%d")
        day, expected_next = date(2025, 1, 1), None
        while day <= date(2027, 12, 31):
            if spec.is_start(day):
                window = days_for_partition(spec.format_key(day), None, spec)
                assert window is not None and window.start == day
                assert expected_next in (None, day), (cron, day)
                expected_next = window.end + ONE_DAY
            day += ONE_DAY


def test_a_yearly_partition_is_at_most_366_days() -> None:
    spec = partition_spec("@yearly", "UTC", "%Y")
    assert (
        days_for_partition("2028", None, spec).days == 366
        and days_for_partition("2027", None, spec).days == 365
    )


def test_the_partition_date_wins_and_must_agree_with_the_key() -> None:
    assert days_for_partition("2025-03-01", at(2025, 3, 1), DAILY) == w("2025-03-01", "2025-03-01")
    assert days_for_partition(None, at(2025, 3, 1), DAILY) == w("2025-03-01", "2025-03-01")
    with pytest.raises(
        InvalidParameterError, match="is not the key of the partition starting 2025-03-01"
    ):
        days_for_partition("2025-03-02", at(2025, 3, 1), DAILY)


def test_a_partition_date_off_utc_midnight_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="not at 00:00 UTC"):
        days_for_partition("2025-03-01", at(2025, 3, 1, 1), DAILY)
    with pytest.raises(
        InvalidParameterError, match="not at 00:00 UTC"
    ):  # Paris midnight is 23:00 UTC
        days_for_partition(None, pendulum.datetime(2025, 3, 1, tz="Europe/Paris"), DAILY)
    with pytest.raises(InvalidParameterError, match="no timezone"):
        days_for_partition(None, datetime(2025, 3, 1), DAILY)


def test_an_aware_partition_date_at_utc_midnight_in_another_zone_is_accepted() -> None:
    assert days_for_partition(
        "2025-03-01", pendulum.datetime(2025, 3, 1, 1, tz="Europe/Paris"), DAILY
    ) == w("2025-03-01", "2025-03-01")


def test_a_partition_date_that_is_not_a_tick_of_the_cron_is_refused() -> None:
    weekly = partition_spec("0 0 * * 1", "UTC", "%Y-%m-%d")
    with pytest.raises(InvalidParameterError, match="not the first day of a partition"):
        days_for_partition("2025-03-04", at(2025, 3, 4), weekly)
    monthly = partition_spec("0 0 1 * *", "UTC", "%Y-%m-%d")
    with pytest.raises(InvalidParameterError, match="not the first day of a partition"):
        days_for_partition("2025-03-02", None, monthly)


def test_a_key_alone_must_be_written_as_the_timetable_writes_it() -> None:
    with pytest.raises(InvalidParameterError, match="does not match the timetable's key_format"):
        days_for_partition("03/01/2025", None, DAILY)
    with pytest.raises(InvalidParameterError, match="is not written the way"):
        days_for_partition("2025-3-1", None, DAILY)
    hourly_format = partition_spec("0 0 * * *", "UTC", "%Y-%m-%dT%H")
    with pytest.raises(InvalidParameterError, match="not at 00:00 UTC"):
        days_for_partition("2025-03-01T05", None, hourly_format)


def test_a_run_without_key_or_date_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="neither a partition_key nor a partition_date"):
        days_for_partition(None, None, DAILY)
    with pytest.raises(InvalidParameterError, match="no partition_key"):
        days_for_partition(None, None)


def test_partitions_before_the_dataset_are_none_and_straddling_ones_are_clamped() -> None:
    assert days_for_partition("2024-12-31", at(2024, 12, 31), DAILY) is None
    weekly = partition_spec("0 0 * * 1", "UTC", "%Y-%m-%d")
    clamped = days_for_partition("2024-12-30", at(2024, 12, 30), weekly)
    assert clamped == Window(date(2025, 1, 1), date(2025, 1, 5), clamped_from=date(2024, 12, 30))
    assert days_for_partition("2024-12-30 (W01)", None) == clamped


# ---------------------------------------------------------------------- keys without a timetable
@pytest.mark.parametrize(
    "key,expected",
    [
        ("2025-03-01", ("2025-03-01", "2025-03-01")),
        ("2028-02-29", ("2028-02-29", "2028-02-29")),
        ("2025-03-03 (W10)", ("2025-03-03", "2025-03-09")),
        ("2025-12-29 (W01)", ("2025-12-29", "2026-01-04")),
        ("2026-12-28 (W53)", ("2026-12-28", "2027-01-03")),
        ("2025-02", ("2025-02-01", "2025-02-28")),
        ("2028-02", ("2028-02-01", "2028-02-29")),
        ("2025-12", ("2025-12-01", "2025-12-31")),
    ],
)
def test_keys_of_the_temporal_mappers_name_their_days(key: str, expected: tuple[str, str]) -> None:
    first, last = (date.fromisoformat(d) for d in expected)
    assert parse_partition_key(key) == (first, last)
    assert days_for_partition(key, None) == Window(first, last)
    assert days_for_partition(key, at(first.year, first.month, first.day)) == Window(first, last)


@pytest.mark.parametrize(
    "key",
    [
        "us",
        "",
        "2025-03-01T00:00:00",
        "2025-3-1",
        "2025-13",
        "2025-02-30",
        "2025-03-04 (W10)",
        "2025-03-03 (W11)",
        "2025-03-03 W10",
        "2025",
        "2025-Q1",
        "all_regions",
    ],
)
def test_other_keys_say_what_works(key: str) -> None:
    with pytest.raises(InvalidParameterError, match="window_start and window_end"):
        days_for_partition(key, None)


def test_a_partition_date_that_disagrees_with_the_key_means_a_mapper_outside_utc() -> None:
    paris_midnight = pendulum.datetime(2025, 3, 1, tz="Europe/Paris")
    with pytest.raises(InvalidParameterError, match="not at 00:00 UTC"):
        days_for_partition("2025-03-01", paris_midnight)
    with pytest.raises(InvalidParameterError, match="not in UTC"):
        days_for_partition("2025-03-03 (W10)", at(2025, 3, 4))
