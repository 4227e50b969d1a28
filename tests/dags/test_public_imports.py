"""The example DAGs and scripts import only the provider's public modules.

import-linter cannot check ``dags/`` and ``scripts/`` (they are not packages), so this test parses
every file there with :mod:`ast` and names each import of a module outside the allowlist. Users copy
these files: whatever they import is, in effect, a public API.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_provider_openrouter"
FILES = sorted([*REPO.glob("dags/*.py"), *REPO.glob("scripts/*.py")])

#: Modules users may import, exactly (a package root: not its submodules).
PUBLIC_MODULES = frozenset(
    f"{PACKAGE}.{name}"
    for name in (
        "lake",
        "windows",
        "compat",
        "exceptions",
        "testing",
        "api.datasets",
        "hooks",
        "operators",
        "sensors",
        "runtime.pool",  # the pool every task that calls OpenRouter runs in (openrouter_pool())
    )
)
#: Packages whose every submodule is public.
PUBLIC_PACKAGES = tuple(
    f"{PACKAGE}.{name}." for name in ("hooks", "operators", "sensors", "api.datasets")
)
#: Submodules of those packages that are not (internal machinery users must not build on).
PRIVATE_MODULES = frozenset({f"{PACKAGE}.operators.base"})


def is_public(module: str) -> bool:
    if module in PRIVATE_MODULES:
        return False
    return module in PUBLIC_MODULES or module.startswith(PUBLIC_PACKAGES)


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package: ``name`` is an attribute
        return False


def offending_imports(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: what`` for each import of a non-public module or name of the provider."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE and not is_public(alias.name):
                    problems.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(f"{where}: relative import (example files are not in a package)")
                continue
            module = node.module or ""
            if module.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                target = submodule if is_module(submodule) else module
                if not is_public(target):
                    problems.append(
                        f"{where}: from {module} import {alias.name} ({target} is not public)"
                    )
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    problems.append(f"{where}: from {module} import {alias.name} (a private name)")
    return problems


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_example_files_import_only_public_modules(path: Path) -> None:
    problems = offending_imports(path.read_text(), str(path.relative_to(REPO)))
    assert not problems, (
        "Example DAGs and scripts may import only the public modules (hooks.*, operators.* except "
        "operators.base, sensors.*, lake, windows, exceptions, api.datasets[.*], testing):\n  "
        + "\n  ".join(problems)
    )


def test_the_files_are_found() -> None:
    names = {str(p.relative_to(REPO)) for p in FILES}
    assert {
        "dags/openrouter_daily.py",
        "dags/openrouter_partitioned.py",
        "scripts/demo_report.py",
    } <= names


@pytest.mark.parametrize(
    ("source", "offence"),
    [
        (f"from {PACKAGE}.lake import storage", f"{PACKAGE}.lake.storage is not public"),
        (
            f"from {PACKAGE}.lake.storage import read_partition",
            f"{PACKAGE}.lake.storage is not public",
        ),
        (f"import {PACKAGE}.lake.manifest as m", f"import {PACKAGE}.lake.manifest"),
        (
            f"from {PACKAGE}.operators.base import Landing",
            f"{PACKAGE}.operators.base is not public",
        ),
        (f"from {PACKAGE}.operators import base", f"{PACKAGE}.operators.base is not public"),
        (f"from {PACKAGE} import storage", f"{PACKAGE}.storage is not public"),
        (f"from {PACKAGE} import __version__", f"{PACKAGE} is not public"),
        (
            f"from {PACKAGE}.windows.intervals import Window",
            f"{PACKAGE}.windows.intervals is not public",
        ),
        (
            f"from {PACKAGE}.api.client import OpenRouterClient",
            f"{PACKAGE}.api.client is not public",
        ),
        (
            f"from {PACKAGE}.testing.emulator import main",
            f"{PACKAGE}.testing.emulator is not public",
        ),
        (f"from {PACKAGE}.lake import _private", "a private name"),
        ("def f():\n    from .lake import x\n", "relative import"),
    ],
)
def test_the_check_names_each_non_public_import(source: str, offence: str) -> None:
    problems = offending_imports(source)
    assert len(problems) == 1 and offence in problems[0], problems


def test_the_check_accepts_the_public_modules() -> None:
    source = "\n".join(
        [
            f"from {PACKAGE} import lake",
            f"from {PACKAGE}.lake import read_records, land_partitions",
            f"from {PACKAGE}.operators.rankings import RankingsDailyOperator",
            f"from {PACKAGE}.operators import analytics",
            f"from {PACKAGE}.sensors.as_of import OpenRouterAsOfSensor",
            f"from {PACKAGE}.hooks.openrouter import OpenRouterHook",
            f"from {PACKAGE}.windows import Window",
            f"from {PACKAGE}.exceptions import OpenRouterError",
            f"from {PACKAGE}.api.datasets import CAVEATS, rankings_daily",
            f"from {PACKAGE}.api.datasets.app_rankings import APP_SORTS",
            f"from {PACKAGE}.testing import Emulator",
            "import json",
            "from airflow.sdk import DAG",
        ]
    )
    assert offending_imports(source) == []
