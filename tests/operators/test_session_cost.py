"""SessionCostOperator in real DAG runs (dag.test) against the emulator over loopback."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing import dataset

from .conftest import Env

pytestmark = pytest.mark.integration

#: The snapshot the emulator serves at the operators' NOW (2026-03-01 02:00 UTC).
WINDOW_END = "2026-02-23"
TASK = (
    "from airflow_provider_openrouter.operators.session_cost import SessionCostOperator\n"
    'SessionCostOperator(task_id="cost", output_uri=LAKE, openrouter_conn_id=CONN{args})'
)


def cost_dag(env: Env, args: str = "") -> str:
    return env.dag(TASK.format(args=args), schedule="weekly")


def committed(env: Env, key: str) -> storage.CommittedPartition:
    found = storage.read_partition(ObjectStoragePath(f"{env.uri}/{key}"))
    assert found is not None, key
    return found


def expected_jsonl(
    window_end: date, cells: int = dataset.SESSION_COST_CELLS, **filters: str
) -> bytes:
    lines = []
    for r in dataset.session_cost_rows(window_end, cells, **filters):
        cost = format(r["median_session_cost_usd"], "f")
        head = json.dumps(
            {k: r[k] for k in ("app_slug", "app_name", "model_permaslug", "turn_range")},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        lines.append(head[:-1] + f',"median_session_cost_usd":{cost}}}\n')
    return "".join(lines).encode()


def test_lands_the_snapshot_exactly_with_manifest_and_event(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    cost_dag(env)
    result = env.run("2026-03-01")
    assert result.task_states == {"cost": "success"}
    key = f"session_cost/app_slug=all/model=all/turn_range=all/window_end={WINDOW_END}"
    part = committed(env, key)
    assert part.data == expected_jsonl(date(2026, 2, 23))
    first = json.loads(part.data.split(b"\n")[0], parse_float=Decimal)
    assert first["median_session_cost_usd"] == Decimal(dataset.EXACT_COST)
    assert (
        b'"median_session_cost_usd":0.12345678901234567890123}' in part.data
    )  # every digit, in the file
    m = part.manifest
    assert m["dataset"] == "session-cost" and m["partition"] == key and m["row_count"] == 1200
    assert m["meta"] == {
        "as_of": "2026-03-01T02:00:00Z",
        "version": "v1",
        "window_days": 30,
        "window_end_date": WINDOW_END,
    }
    assert m["window"] == {
        "start": "2026-01-25",
        "end": WINDOW_END,
        "days": 30,
        "clamped_from": None,
    }
    assert m["snapshot"] == {"window_end_date": WINDOW_END, "window_days": 30, "version": "v1"}
    assert m["complete"] is True and m["capped"] is False and m["truncated"] is False
    assert (
        m["citation"]
        == "Source: OpenRouter (openrouter.ai), cost per session by harness and model, as of 2026-03-01T02:00:00Z."
    )
    assert "CC BY 4.0" in m["license"] and "not comparable to the token rankings" in m["caveats"]
    sent = [r["params"] for r in env.emulator.requests]
    assert sent == [
        {"limit": "500", "offset": "0"},
        {"limit": "500", "offset": "500"},
        {"limit": "500", "offset": "1000"},
    ]
    assert m["request"] == {
        "path": "/datasets/session-cost",
        "params": [
            {"limit": 500, "offset": 0},
            {"limit": 500, "offset": 500},
            {"limit": 500, "offset": 1000},
        ],
    }
    summary = result.xcom("cost")
    assert (
        summary["requests"] == 3
        and summary["partitions"]["created"] == 1
        and summary["partition"] == key
    )
    assert [e["uri"] for e in result.asset_events] == [
        f"{env.uri}/session_cost/app_slug=all/model=all/turn_range=all"
    ]
    assert result.asset_events[0]["extra"]["window"] == {"start": "2026-01-25", "end": WINDOW_END}
    logs = capfd.readouterr()
    assert "sk-or-emulator" not in logs.out + logs.err
    assert all(b"sk-or-emulator" not in content for content in env.files().values())


def test_same_snapshot_twice_writes_nothing_and_a_new_snapshot_is_a_new_partition(env: Env) -> None:
    cost_dag(env)
    assert env.run("2026-03-01").state == "success"
    inodes = env.inodes()
    env.emulator.set_now(
        datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    )  # later, same snapshot (as_of differs)
    again = env.run("2026-03-01")
    assert again.state == "success" and env.inodes() == inodes
    assert again.xcom("cost")["partitions"] == {
        "created": 0,
        "restated": 0,
        "replaced": 0,
        "repaired": 0,
        "unchanged": 1,
    }
    assert again.xcom("cost")["partitions_written"] == 0
    env.emulator.set_now(
        datetime(2026, 3, 3, 2, 0, tzinfo=timezone.utc)
    )  # the snapshot ending 2026-03-02 is out
    third = env.run("2026-03-01")
    assert (
        third.xcom("cost")["partition"]
        == "session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-03-02"
    )
    assert committed(
        env, "session_cost/app_slug=all/model=all/turn_range=all/window_end=2026-03-02"
    ).data == expected_jsonl(date(2026, 3, 2))
    assert {
        k: v for k, v in env.inodes().items() if k in inodes
    } == inodes  # the older snapshot untouched


def test_no_snapshot_published_skips_without_writing(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.emulator.set_session_cost(published=False)
    cost_dag(env)
    result = env.run("2026-03-01")
    assert result.task_states == {"cost": "skipped"}
    assert env.files() == {} and result.asset_events == []
    assert env.emulator.request_count("/datasets/session-cost") == 1
    logs = capfd.readouterr()
    assert "no session-cost snapshot published" in logs.out + logs.err


def test_filters_go_into_the_path_and_the_query(env: Env) -> None:
    cost_dag(env, ', app_slug="aider", model="allenai/molmo-7b-d", turn_range=None')
    result = env.run("2026-03-01")
    assert result.state == "success"
    key = f"session_cost/app_slug=aider/model=allenai%2Fmolmo-7b-d/turn_range=all/window_end={WINDOW_END}"
    part = committed(env, key)
    filters = {"app_slug": "aider", "model": "allenai/molmo-7b-d"}
    assert (
        part.data == expected_jsonl(date(2026, 2, 23), **filters)
        and part.manifest["row_count"] >= 2
    )
    assert env.emulator.requests[0]["params"] == {**filters, "limit": "500", "offset": "0"}
    assert part.manifest["session_cost_query"] == {**filters, "turn_range": None, "max_cells": 5500}
    assert [e["uri"] for e in result.asset_events] == [
        f"{env.uri}/session_cost/app_slug=aider/model=allenai%2Fmolmo-7b-d/turn_range=all"
    ]


def test_ceiling_lands_what_is_reachable_and_says_so(
    env: Env, capfd: pytest.CaptureFixture[str]
) -> None:
    env.emulator.set_session_cost(cells=6000)
    cost_dag(env)
    result = env.run("2026-03-01")
    assert result.state == "success"
    part = committed(
        env, f"session_cost/app_slug=all/model=all/turn_range=all/window_end={WINDOW_END}"
    )
    assert (
        part.manifest["row_count"] == 5500
        and part.manifest["capped"] is True
        and part.manifest["complete"] is False
    )
    assert part.data == b"".join(
        expected_jsonl(date(2026, 2, 23), 6000).splitlines(keepends=True)[:5500]
    )
    assert [int(r["params"]["offset"]) for r in env.emulator.requests] == list(range(0, 5001, 500))
    logs = capfd.readouterr()
    assert "ceiling of 5500 cells was reached" in logs.out + logs.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (', turn_range="3-turns"', "turn_range='3-turns' is not supported"),
        (', model="claude"', "model='claude' is not a model permaslug"),
        (', app_slug="Hermes Agent"', "app_slug='Hermes Agent' is not a harness slug"),
        (", max_cells=6000", "max_cells=6000 must be an integer from 1 to 5500"),
        (', format="parquet"', "format='parquet' is not supported for session cost"),
        (', window_start="2026-01-01", window_end="2026-01-07"', "window_start does not apply"),
    ],
)
def test_bad_parameters_fail_at_parse_time_without_a_request(
    env: Env, dag_import_error: object, args: str, message: str
) -> None:
    cost_dag(env, args)
    assert message in dag_import_error(f"{env.dag_id}.py")  # type: ignore[operator]
    assert env.emulator.requests == []


def test_templated_bad_turn_range_fails_before_a_request(env: Env) -> None:
    env.dag(
        TASK.format(args=', turn_range="{{ params.turns }}"'),
        schedule="weekly",
        params={"turns": "many"},
    )
    result = env.run("2026-03-01")
    assert result.task_states == {"cost": "failed"}
    assert env.emulator.requests == [] and env.files() == {}
