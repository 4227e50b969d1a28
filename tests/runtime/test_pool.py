"""The pool every OpenRouter task runs in: its name, the example DAGs, and the check that reports a missing one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_openrouter.runtime import pool

REPO = Path(__file__).resolve().parents[2]


def test_name_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pool.POOL_ENV, raising=False)
    assert pool.openrouter_pool() == "openrouter"
    monkeypatch.setenv(pool.POOL_ENV, " api_pool ")
    assert pool.openrouter_pool() == "api_pool"
    monkeypatch.setenv(pool.POOL_ENV, "")
    assert pool.openrouter_pool() == "openrouter"


def test_every_example_task_that_calls_openrouter_names_the_pool() -> None:
    """Every call of a class in POOL_TASK_CLASSES in dags/*.py (plain or .partial) passes pool=OPENROUTER_POOL."""
    names = {path.rsplit(".", 1)[1] for path in pool.POOL_TASK_CLASSES}
    seen = 0
    for dag_file in sorted((REPO / "dags").glob("*.py")):
        tree = ast.parse(dag_file.read_text())
        aliases = {  # e.g. ``RankingsDailyOperator as Rankings``
            alias.asname: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if alias.asname and alias.name in names
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            target = (
                func.value if isinstance(func, ast.Attribute) and func.attr == "partial" else func
            )
            if isinstance(target, ast.Name) and aliases.get(target.id, target.id) in names:
                seen += 1
                pools = [k.value for k in node.keywords if k.arg == "pool"]
                assert (
                    len(pools) == 1
                    and isinstance(pools[0], ast.Name)
                    and pools[0].id == "OPENROUTER_POOL"
                ), f"{dag_file.name}:{node.lineno}: {target.id} without pool=OPENROUTER_POOL"
    assert seen >= 8


def test_the_check_reports_a_missing_pool_and_creates_it(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(pool.POOL_ENV, "openrouter_check_test")
    assert pool.main([]) == 1
    err = capsys.readouterr().err
    assert "'openrouter_check_test' does not exist" in err
    assert "airflow pools set openrouter_check_test 4" in err and "stay 'scheduled'" in err
    assert pool.main(["--create", "--slots", "3"]) == 0
    assert pool.main([]) == 0
    from airflow.models.pool import Pool

    assert Pool.get_pool("openrouter_check_test").slots == 3
