"""The emulator's session-cost endpoint over real HTTP: weekly snapshots, no-snapshot state, paging, limits."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from airflow_provider_openrouter.testing import Emulator, dataset

KEY = {"Authorization": "Bearer sk-or-emulator"}
PATH = "/datasets/session-cost"


def get(emulator: Emulator, **params: Any) -> httpx.Response:
    return httpx.get(emulator.base_url + PATH, params=params, headers=KEY, timeout=10)


def body(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)


@pytest.fixture
def emulator(openrouter_emulator_factory: Any) -> Emulator:
    return openrouter_emulator_factory(
        rpm=None, daily_limit=None, now=datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
    )


def test_weekly_snapshots_follow_the_clock(emulator: Emulator) -> None:
    assert body(get(emulator, limit=1))["meta"] == {
        "as_of": "2026-03-01T02:00:00Z",
        "version": "v1",
        "window_days": 30,
        "window_end_date": "2026-02-23",
    }
    emulator.set_now(
        datetime(2026, 3, 3, 1, 59, 59, tzinfo=timezone.utc)
    )  # the window ending 03-02 is not out yet
    assert body(get(emulator, limit=1))["meta"]["window_end_date"] == "2026-02-23"
    emulator.set_now(datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc))
    new = body(get(emulator, limit=5))
    assert new["meta"]["window_end_date"] == "2026-03-02"
    emulator.set_now(datetime(2025, 1, 7, 1, 0, tzinfo=timezone.utc))  # before the first snapshot
    assert body(get(emulator)) == {
        "data": [],
        "meta": {
            "as_of": "2025-01-07T01:00:00Z",
            "version": "v1",
            "window_days": None,
            "window_end_date": None,
        },
    }


def test_values_change_weekly_and_keep_every_digit(emulator: Emulator) -> None:
    raw = get(emulator, limit=2).content
    assert (
        b'"median_session_cost_usd":0.12345678901234567890123,' in raw
    )  # a JSON number, not a string
    first = body(get(emulator, limit=500))["data"]
    assert first[0]["median_session_cost_usd"] == Decimal(dataset.EXACT_COST)
    assert float(first[0]["median_session_cost_usd"]) != Decimal(
        dataset.EXACT_COST
    )  # a float would round it
    emulator.set_now(datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc))
    later = body(get(emulator, limit=500))["data"]
    assert [(r["app_slug"], r["model_permaslug"], r["turn_range"]) for r in later] == [
        (r["app_slug"], r["model_permaslug"], r["turn_range"]) for r in first
    ]
    assert [r["median_session_cost_usd"] for r in later[1:]] != [
        r["median_session_cost_usd"] for r in first[1:]
    ]


def test_no_snapshot_state_by_control_endpoint(emulator: Emulator) -> None:
    assert (
        httpx.post(emulator.url + "/_emulator/session_cost", json={"published": False}).status_code
        == 200
    )
    answer = body(get(emulator))
    assert (
        answer["data"] == []
        and answer["meta"]["window_end_date"] is None
        and answer["meta"]["window_days"] is None
    )
    state = httpx.get(emulator.url + "/_emulator/session_cost").json()
    assert state["published"] is False and state["window_end_date"] is None
    httpx.post(emulator.url + "/_emulator/session_cost", json={"published": True, "cells": 6400})
    assert httpx.get(emulator.url + "/_emulator/session_cost").json()["cells"] == 6400


def test_paging_sorted_cells_and_the_offset_ceiling(emulator: Emulator) -> None:
    emulator.set_session_cost(cells=6400)
    default = body(get(emulator))["data"]
    assert len(default) == 100  # limit defaults to 100
    cells = []
    for offset in range(0, 5001, 500):
        cells += body(get(emulator, limit=500, offset=offset))["data"]
    assert (
        len(cells) == 5500
        and len({(c["app_slug"], c["model_permaslug"], c["turn_range"]) for c in cells}) == 5500
    )
    order = [
        (c["app_slug"], c["model_permaslug"], dataset.TURN_RANGES.index(c["turn_range"]))
        for c in cells
    ]
    assert order == sorted(order)
    for params, message in [
        ({"offset": 5001}, "offset"),
        ({"limit": 501}, "limit"),
        ({"limit": 0}, "limit"),
        ({"turn_range": "9-turns"}, "turn_range"),
        ({"app_slug": ""}, "app_slug"),
    ]:
        response = get(emulator, **params)
        assert response.status_code == 400 and message in response.json()["error"]["message"]


def test_filters(emulator: Emulator) -> None:
    rows = body(get(emulator, app_slug="aider", turn_range="1-turn", limit=500))["data"]
    assert rows == [
        r
        for r in body(get(emulator, limit=500, offset=0))["data"]
        + body(get(emulator, limit=500, offset=500))["data"]
        + body(get(emulator, limit=500, offset=1000))["data"]
        if r["app_slug"] == "aider" and r["turn_range"] == "1-turn"
    ]
    model = rows[0]["model_permaslug"]
    across = body(get(emulator, model=model, limit=500))["data"]
    assert {r["model_permaslug"] for r in across} == {model} and len(
        {r["app_slug"] for r in across}
    ) >= 1


def test_counts_against_the_limits(openrouter_emulator_factory: Any) -> None:
    emulator = openrouter_emulator_factory(rpm=2, daily_limit=None)
    assert get(emulator).status_code == 200 and get(emulator).status_code == 200
    assert get(emulator).status_code == 429
    assert httpx.get(emulator.base_url + PATH, timeout=10).status_code == 401


def test_cli_flags() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_openrouter.testing.emulator",
            "--port",
            "0",
            "--no-session-cost",
            "--now",
            "2026-03-01T02:00:00Z",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        answer = httpx.get(base_url + PATH, headers=KEY, timeout=10).json()
        assert answer["meta"]["window_end_date"] is None and answer["data"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dataset_rows_are_deterministic() -> None:
    a = dataset.session_cost_rows(date(2026, 2, 23))
    assert (
        a == dataset.session_cost_rows(date(2026, 2, 23)) and len(a) == dataset.SESSION_COST_CELLS
    )
    assert dataset.session_cost_rows(date(2026, 2, 23), 10, app_slug="zed") == [
        r for r in dataset.session_cost_rows(date(2026, 2, 23), 10) if r["app_slug"] == "zed"
    ]
    assert all(r["median_session_cost_usd"] >= 0 for r in a)
    assert dataset.session_cost_rows(date(2026, 3, 2))[0]["median_session_cost_usd"] == Decimal(
        dataset.EXACT_COST
    )
