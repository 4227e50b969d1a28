"""Every way a run can go wrong fails the task before anything is written: previous output stays intact.

Each case first lands a good week, then makes upstream data change (a restatement, so a run that
wrongly wrote would change files), then serves a bad answer and checks the lake is byte- and
inode-identical, with no leftover staged files.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from .conftest import Env

pytestmark = pytest.mark.integration

TASK = 'RankingsDailyOperator(task_id="rankings", output_uri=LAKE, openrouter_conn_id=CONN, coalesce=False)'
KEY = "sk-or-emulator"


def fetch(env: Env, start: str, end: str) -> dict[str, Any]:
    """The emulator's genuine answer for a window (then mutated into a bad one)."""
    response = httpx.get(
        f"{env.emulator.base_url}/datasets/rankings-daily",
        params={"start_date": start, "end_date": end},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    response.raise_for_status()
    return response.json()


def _rows_of(body: dict, day: str) -> list[int]:
    return [i for i, row in enumerate(body["data"]) if row["date"] == day]


def float_count(body: dict) -> None:
    body["data"][0]["total_tokens"] = 1.5e18


def letters_in_count(body: dict) -> None:
    body["data"][5]["total_tokens"] = "12a"


def duplicate_row(body: dict) -> None:
    body["data"].insert(1, copy.deepcopy(body["data"][0]))


def row_outside_window(body: dict) -> None:
    body["data"][-1]["date"] = "2025-07-08"


def schema_drift(body: dict) -> None:
    for row in body["data"]:
        row["tokens"] = row.pop("total_tokens")


def other_not_last(body: dict) -> None:
    last = _rows_of(body, "2025-07-02")[-1]
    body["data"][last - 1], body["data"][last] = body["data"][last], body["data"][last - 1]


def missing_day(body: dict) -> None:
    body["data"] = [row for row in body["data"] if row["date"] != "2025-07-03"]


def shifted_window(body: dict) -> None:
    body["meta"]["start_date"] = "2025-07-02"
    body["data"] = [row for row in body["data"] if row["date"] != "2025-07-01"]


def clamped_end(body: dict) -> None:
    body["meta"]["end_date"] = "2025-07-06"
    body["data"] = [row for row in body["data"] if row["date"] != "2025-07-07"]


def data_not_a_list(body: dict) -> None:
    body["data"] = {"rows": body["data"]}


def no_meta(body: dict) -> None:
    del body["meta"]


def bad_as_of(body: dict) -> None:
    body["meta"]["as_of"] = "yesterday"


CASES: list[tuple[Callable[[dict], None], str]] = [
    (float_count, "Decimal('1.5E+18') has type Decimal"),
    (letters_in_count, "'12a' is not a non-negative decimal integer string"),
    (duplicate_row, "duplicate row for (2025-07-01"),
    (row_outside_window, "date 2025-07-08 lies outside meta's window"),
    (schema_drift, "missing required field 'total_tokens'"),
    (other_not_last, "'other' must be last"),
    (missing_day, "no rows for 2025-07-03 inside the answered window"),
    (shifted_window, "asked for 2025-07-01..2025-07-07, the answer covers 2025-07-02..2025-07-07"),
    (
        clamped_end,
        "2025-07-01..2025-07-07 is not complete yet: the API clamped the end. Nothing was written.",
    ),
    (data_not_a_list, "has type dict"),
    (no_meta, "missing required field 'meta'"),
    (bad_as_of, "'yesterday' is not an ISO-8601 timestamp"),
]


@pytest.mark.parametrize(("mutate", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_answer_fails_and_leaves_previous_output_intact(
    env: Env, capfd: pytest.CaptureFixture[str], mutate: Callable[[dict], None], message: str
) -> None:
    env.dag(TASK, schedule="weekly")
    assert env.run("2025-07-08").state == "success"
    files, inodes = env.files(), env.inodes()
    env.emulator.restate("2025-07-02")
    body = fetch(env, "2025-07-01", "2025-07-07")
    mutate(body)
    env.emulator.inject("payload", body=body)
    capfd.readouterr()
    result = env.run("2025-07-08")
    assert result.task_states == {"rankings": "failed"}
    assert env.files() == files and env.inodes() == inodes
    logs = capfd.readouterr()
    assert message in logs.out + logs.err


def test_window_reaching_an_incomplete_day_fails_before_writing(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.emulator.set_now(
        datetime(2025, 7, 6, 2, tzinfo=timezone.utc)
    )  # last complete day: 2025-07-05
    env.dag(TASK, schedule="weekly")
    result = env.run("2025-07-08")
    assert result.task_states == {"rankings": "failed"}
    assert not env.lake.exists()
    logs = capfd.readouterr()
    assert (
        "OpenRouter's rankings-daily data ends at 2025-07-05 (as of 2025-07-06T02:00:00+00:00), so "
        "2025-07-01..2025-07-07 is not complete yet"
    ) in logs.out + logs.err
    assert "WindowNotCompleteError" in logs.out + logs.err


def test_window_entirely_after_the_last_complete_day_fails_as_not_complete(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.emulator.set_now(
        datetime(2025, 7, 4, 2, tzinfo=timezone.utc)
    )  # last complete day: 2025-07-03
    env.dag(TASK)
    result = env.run("2025-07-05")
    assert result.task_states == {"rankings": "failed"}
    assert not env.lake.exists()
    logs = capfd.readouterr()
    assert (
        "WindowNotCompleteError: OpenRouter has no complete data for 2025-07-04..2025-07-04 yet"
        in logs.out + logs.err
    )


def test_a_bad_older_chunk_discards_the_already_staged_newer_chunk(env: Env) -> None:
    env.dag(TASK, schedule="400d")
    newest = fetch(env, "2026-01-26", "2026-02-28")
    older = fetch(env, "2025-01-25", "2026-01-25")
    duplicate_row(older)
    env.emulator.inject("payload", body=newest)
    env.emulator.inject("payload", body=older)
    result = env.run("2026-03-01")
    assert result.task_states == {"rankings": "failed"}
    assert (
        list(env.lake.rglob("*")) == []
    )  # the 34 staged partitions of the newest chunk were removed, nothing committed
    assert env.emulator.request_count("/rankings-daily") == 4  # 2 fetches above + 2 by the task


def test_interval_not_on_utc_midnights_fails_with_the_timetable_to_use(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.dag(TASK, schedule="hourly")
    result = env.run("2025-07-05T01:00:00+00:00")  # [00:00, 01:00)
    assert result.task_states == {"rankings": "failed"}
    assert env.emulator.requests == [] and not env.lake.exists()
    logs = capfd.readouterr()
    assert "data_interval_end=2025-07-05T01:00:00+00:00 is not at 00:00 UTC" in logs.out + logs.err
    assert 'CronDataIntervalTimetable("0 0 * * *", timezone="UTC")' in logs.out + logs.err
