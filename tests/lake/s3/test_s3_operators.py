"""The operators against a real S3 server (SeaweedFS) through an Airflow ``aws`` connection.

The same DAG run writes the window locally and to S3: the bytes must be identical, a rerun must
not write a single object version, and a failed run must leave S3 exactly as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.testing.emulator import Emulator

from .conftest import BUCKET, objects, versions

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 2, tzinfo=timezone.utc)

DAG = """
from datetime import datetime, timedelta, timezone
from airflow.sdk import DAG
from airflow.timetables.interval import DeltaDataIntervalTimetable
from airflow_provider_openrouter.operators.rankings import AppRankingsOperator, RankingsDailyOperator

with DAG({dag_id!r}, schedule=DeltaDataIntervalTimetable(timedelta(days=3)),
         start_date=datetime(2024, 1, 1, tzinfo=timezone.utc), catchup=False):
    for name, uri, conn in (("local", {local!r}, None), ("s3", {remote!r}, {aws!r})):
        RankingsDailyOperator(task_id=f"rankings_{{name}}", output_uri=uri, output_conn_id=conn, openrouter_conn_id={conn!r}, coalesce=False)
        AppRankingsOperator(task_id=f"apps_{{name}}", output_uri=uri, output_conn_id=conn, openrouter_conn_id={conn!r},
                            category="coding")
"""


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    openrouter_emulator_factory: Callable[..., Emulator],
    openrouter_conn: Callable[..., str],
    s3_conn: str,
    s3_prefix: str,
    write_dag: Callable[[str, str], Path],
    tmp_path: Path,
) -> dict[str, Any]:
    emulator = openrouter_emulator_factory(rpm=None, daily_limit=None, now=NOW)
    conn = openrouter_conn(emulator)
    dag_id = "s3_" + re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)
    local = f"file://{tmp_path}/lake"
    remote = f"s3://{BUCKET}/{s3_prefix}"
    write_dag(dag_id, DAG.format(dag_id=dag_id, local=local, remote=remote, aws=s3_conn, conn=conn))
    return {
        "emulator": emulator,
        "dag_id": dag_id,
        "local": tmp_path / "lake",
        "remote": remote,
        "prefix": s3_prefix,
        "aws": s3_conn,
    }


def local_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _without_fetched_at(raw: bytes) -> dict:
    manifest = json.loads(raw)
    manifest.pop("fetched_at")
    return manifest


def test_s3_gets_the_same_bytes_as_local_files(
    world: dict[str, Any], run_dag: Callable[..., Any], s3: Any
) -> None:
    result = run_dag(world["dag_id"], datetime(2025, 7, 8, tzinfo=timezone.utc))  # [07-05, 07-08)
    assert set(result.task_states.values()) == {"success"}, result.task_states
    local, remote = local_files(world["local"]), objects(s3, world["prefix"])
    assert (
        sorted(remote) == sorted(local) and len(remote) == 2 * 3 + 2
    )  # no pending or temp objects left
    for key, body in local.items():
        if key.endswith("_manifest.json"):
            assert _without_fetched_at(remote[key]) == _without_fetched_at(body), key
        else:
            assert remote[key] == body, key
    part = storage.read_partition(
        ObjectStoragePath(f"{world['remote']}/rankings_daily/date=2025-07-06", conn_id=world["aws"])
    )
    assert part is not None and part.data == local["rankings_daily/date=2025-07-06/data.jsonl"]
    assert {e["uri"] for e in result.asset_events} >= {f"{world['remote']}/rankings_daily"}
    assert (
        result.xcom("rankings_s3")["row_count"]
        == result.xcom("rankings_local")["row_count"]
        == 3 * 51
    )


def test_rerun_writes_nothing_and_restatement_rewrites_one_day(
    world: dict[str, Any], run_dag: Callable[..., Any], s3: Any
) -> None:
    when = datetime(2025, 7, 8, tzinfo=timezone.utc)
    run_dag(world["dag_id"], when)
    before = versions(s3, world["prefix"])
    again = run_dag(world["dag_id"], when)
    assert again.xcom("rankings_s3")["partitions"]["unchanged"] == 3
    assert versions(s3, world["prefix"]) == before  # not one object version written or deleted

    old = objects(s3, world["prefix"])
    world["emulator"].restate("2025-07-06")
    third = run_dag(world["dag_id"], when)
    assert third.xcom("rankings_s3")["restated"] == ["rankings_daily/date=2025-07-06"]
    new = objects(s3, world["prefix"])
    changed = {k for k in new if new[k] != old[k]}
    assert changed == {
        "rankings_daily/date=2025-07-06/data.jsonl",
        "rankings_daily/date=2025-07-06/_manifest.json",
        "app_rankings/sort=popular/category=coding/subcategory=all/window=2025-07-05_2025-07-07/data.jsonl",
        "app_rankings/sort=popular/category=coding/subcategory=all/window=2025-07-05_2025-07-07/_manifest.json",
    }
    manifest = json.loads(new["rankings_daily/date=2025-07-06/_manifest.json"])
    assert manifest["previous_sha256"] == storage.sha256_hex(
        old["rankings_daily/date=2025-07-06/data.jsonl"]
    )
    assert (
        new["rankings_daily/date=2025-07-06/data.jsonl"]
        == local_files(world["local"])["rankings_daily/date=2025-07-06/data.jsonl"]
    )


def test_failed_run_leaves_s3_untouched(
    world: dict[str, Any], run_dag: Callable[..., Any], s3: Any
) -> None:
    when = datetime(2025, 7, 8, tzinfo=timezone.utc)
    run_dag(world["dag_id"], when)
    before = versions(s3, world["prefix"])
    emulator = world["emulator"]
    emulator.restate("2025-07-06")
    body = httpx.get(
        f"{emulator.base_url}/datasets/rankings-daily",
        params={"start_date": "2025-07-05", "end_date": "2025-07-07"},
        headers={"Authorization": "Bearer sk-or-emulator"},
    ).json()
    body["data"][3]["total_tokens"] = "-5"
    emulator.inject(
        "payload", body=body, times=None, path="/rankings-daily"
    )  # every rankings request is bad
    emulator.inject(
        "payload",
        body={"data": [], "meta": {"as_of": "2026-03-01T02:00:00Z"}},
        times=None,
        path="/app-rankings",
    )
    result = run_dag(world["dag_id"], when)
    assert result.task_states["rankings_s3"] == result.task_states["apps_s3"] == "failed"
    assert versions(s3, world["prefix"]) == before
