"""The supported Airflow range: every module imports, every example DAG parses or says which Airflow
it needs, and names that newer Airflow has fail with that version instead of a bare ImportError.

Runs in both CI environments: the newest Airflow (``make test``) and the oldest supported one
(``make test-oldest``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_openrouter
from airflow_provider_openrouter import compat
from airflow_provider_openrouter.compat import AIRFLOW_VERSION, AirflowVersionError, require_airflow

DAGS = Path(__file__).resolve().parents[1] / "dags"

#: Example DAG files that need a newer Airflow than the oldest supported, and the version.
NEEDS = {"openrouter_partitioned.py": (3, 3, 0)}


def test_every_module_of_the_package_imports() -> None:
    names = [
        m.name
        for m in pkgutil.walk_packages(
            airflow_provider_openrouter.__path__, "airflow_provider_openrouter."
        )
    ]
    assert (
        "airflow_provider_openrouter.hooks.openrouter" in names
        and "airflow_provider_openrouter.compat" in names
    )
    for name in names:
        importlib.import_module(name)


def test_moved_names_resolve_to_the_airflow_classes() -> None:
    from airflow.sdk import BaseOperator

    from airflow_provider_openrouter.exceptions import OpenRouterError
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook

    assert issubclass(OpenRouterError, compat.AirflowException)
    assert issubclass(compat.AirflowSkipException, compat.AirflowException) or AIRFLOW_VERSION >= (
        3,
        2,
        0,
    )
    assert issubclass(OpenRouterHook, compat.BaseHook)
    assert isinstance(
        compat.conf.getboolean("operators", "default_deferrable", fallback=False), bool
    )
    assert compat.DagBag.__name__ == "DagBag" and BaseOperator is not None


def test_the_installed_version_is_parsed() -> None:
    import airflow

    assert (
        ".".join(map(str, AIRFLOW_VERSION))
        == airflow.__version__.split("+")[0][: len(".".join(map(str, AIRFLOW_VERSION)))]
    )
    assert (3, 0, 0) <= AIRFLOW_VERSION < (4, 0, 0)


def test_require_airflow_names_the_feature_and_both_versions() -> None:
    require_airflow("3.0", "anything")  # the floor: never raises
    with pytest.raises(
        AirflowVersionError,
        match=r"^Weekly rollups needs Airflow 99\.1 or newer; this is Airflow 3\.",
    ):
        require_airflow("99.1", "Weekly rollups")
    assert issubclass(AirflowVersionError, ImportError)


@pytest.mark.parametrize(
    ("name", "needs"),
    [("CronPartitionTimetable", "3.2"), ("RollupMapper", "3.3"), ("WeekWindow", "3.3")],
)
def test_a_newer_airflow_name_resolves_or_names_the_version_it_needs(name: str, needs: str) -> None:
    if (*(int(n) for n in needs.split(".")), 0) <= AIRFLOW_VERSION:
        import airflow.sdk

        assert getattr(compat, name) is getattr(airflow.sdk, name)
    else:
        with pytest.raises(
            AirflowVersionError,
            match=rf"^{name}, part of partitioned scheduling .* needs Airflow {needs} or newer",
        ):
            getattr(compat, name)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        compat.NoSuchThing  # noqa: B018


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_every_example_dag_parses_or_names_the_airflow_it_needs(
    dag_file: str,
    install_example_dag: Callable[..., Path],
    dag_import_error: Callable[[str], str],
    load_dags: Callable[[], Any],
) -> None:
    install_example_dag(DAGS / dag_file)
    error = dag_import_error(dag_file)
    needs = NEEDS.get(dag_file, (3, 0, 0))
    if needs <= AIRFLOW_VERSION:
        assert error == ""
        bag, _ = load_dags()
        assert bag.dags and not bag.import_errors
    else:
        assert "AirflowVersionError" in error and "or newer; this is Airflow" in error
        assert "needs Airflow 3.2 or newer" in error or "needs Airflow 3.3 or newer" in error
        assert "cannot import name" not in error
