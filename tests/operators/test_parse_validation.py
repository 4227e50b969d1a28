"""A typo fails when the DAG file is parsed, with a message naming the parameter and the fix."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from airflow.sdk import Asset

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.operators.rankings import (
    AppRankingsOperator,
    RankingsDailyOperator,
)

from .conftest import DAG_TEMPLATE, SCHEDULES

pytestmark = pytest.mark.integration

BAD = [
    (
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, sort="populer")',
        "sort='populer' is not supported; use one of popular, trending",
    ),
    (
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, category="codeing")',
        "category='codeing' is not an OpenRouter app category; use one of coding, creative, productivity, entertainment",
    ),
    (
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, category="creative", subcategory="cli-agent")',
        "subcategory='cli-agent' belongs to category 'coding', not 'creative'",
    ),
    (
        'AppRankingsOperator(task_id="apps", output_uri=LAKE, max_apps=500)',
        "max_apps=500 must be an integer from 1 to 200",
    ),
    (
        'RankingsDailyOperator(task_id="r", output_uri=LAKE, format="csv")',
        "format='csv' is not supported; use one of jsonl, parquet",
    ),
    (
        'RankingsDailyOperator(task_id="r", output_uri="lake/openrouter")',
        "output_uri='lake/openrouter' has no scheme; use file:///absolute/path for local files or s3://bucket/prefix",
    ),
    (
        'RankingsDailyOperator(task_id="r", output_uri=LAKE, window_start="2025-07-01")',
        "give window_start and window_end together",
    ),
    (
        'RankingsDailyOperator(task_id="r", output_uri=LAKE, window_start="2025-7-1", window_end="2025-07-02")',
        "window_start='2025-7-1' is not a calendar date; use YYYY-MM-DD (UTC)",
    ),
]


@pytest.mark.parametrize(("task", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_typos_fail_the_dag_import_with_a_clear_message(
    write_dag: Callable[[str, str], Path],
    dag_import_error: Callable[[str], str],
    task: str,
    message: str,
) -> None:
    name = "parse_" + hashlib.sha256(task.encode()).hexdigest()[:10]
    write_dag(
        name,
        DAG_TEMPLATE.format(
            lake="file:///tmp/lake",
            conn="c",
            dag_id=name,
            schedule=SCHEDULES["daily"],
            params={},
            tasks="    " + task,
        ),
    )
    error = dag_import_error(f"{name}.py")
    assert "InvalidParameterError" in error and message in error


def test_a_valid_dag_imports_cleanly(
    write_dag: Callable[[str, str], Path], dag_import_error: Callable[[str], str]
) -> None:
    tasks = (
        '    RankingsDailyOperator(task_id="r", output_uri=LAKE, output_conn_id=None)\n'
        '    AppRankingsOperator(task_id="a", output_uri=LAKE, sort="trending", category="coding", subcategory="cli-agent")'
    )
    write_dag(
        "parse_ok",
        DAG_TEMPLATE.format(
            lake="s3://lake/openrouter",
            conn="c",
            dag_id="parse_ok",
            schedule=SCHEDULES["daily"],
            params={},
            tasks=tasks,
        ),
    )
    assert dag_import_error("parse_ok.py") == ""


def test_outlets_and_template_fields() -> None:
    op = RankingsDailyOperator(task_id="r", output_uri="s3://lake/openrouter/")
    assert op.outlets == [Asset("s3://lake/openrouter/rankings_daily")]
    assert {"output_uri", "output_conn_id", "window_start", "window_end"} <= set(op.template_fields)
    apps = AppRankingsOperator(
        task_id="a", output_uri="s3://lake/x", category="coding", outlets=[Asset("s3://other/y")]
    )
    # explicit outlets replace the default asset, and the event extra goes to the first one
    assert apps.outlets == [Asset("s3://other/y")] and apps.asset == Asset("s3://other/y")
    plain = AppRankingsOperator(task_id="b", output_uri="s3://lake/x", category="coding")
    assert plain.outlets == [
        Asset("s3://lake/x/app_rankings/sort=popular/category=coding/subcategory=all")
    ]
    assert {"sort", "category", "subcategory"} <= set(apps.template_fields)
    templated = RankingsDailyOperator(task_id="t", output_uri="s3://{{ var.value.bucket }}/x")
    assert (
        templated.outlets == [] and templated.asset is None
    )  # unknown until run time: declare outlets yourself


def test_templated_values_are_checked_at_run_time_not_parse_time() -> None:
    AppRankingsOperator(task_id="a", output_uri="{{ var.value.lake }}", category="{{ params.c }}")
    RankingsDailyOperator(
        task_id="r", output_uri="file:///x", window_start="{{ ds }}", window_end="{{ ds }}"
    )
    with pytest.raises(InvalidParameterError, match="max_apps='10'"):
        AppRankingsOperator(
            task_id="a", output_uri="file:///x", category="{{ params.c }}", max_apps="10"
        )
