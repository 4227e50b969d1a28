"""What a DAG file pays for importing the hook, the operators or the sensor.

The scheduler's DAG processor imports every DAG file, so the modules the provider's Airflow roles
load at import time are paid on every parse. Whatever is needed only while a task runs (the
OpenLineage facets, metrics, the trigger of a deferring sensor, pyarrow, the analytics models for
the hook) is imported inside the functions that use it. Each test imports a role in a fresh
interpreter, after ``import airflow.sdk`` as a DAG file does, and fails naming the module when one
of those is loaded again at import time. Timing is left to ``benchmarks/hook_speed.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PACKAGE = "airflow_provider_openrouter"

#: Prints the modules that ``{statement}`` loads beyond ``import airflow.sdk`` and the base classes.
PROBE = """
import json, sys
import airflow.sdk
from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator
before = set(sys.modules)
{statement}
print(json.dumps(sorted(set(sys.modules) - before)))
"""

#: Needed by no role at import time: lineage (OpenLineage), metrics (Stats), the shared budget,
#: Parquet, the deferral triggers (Airflow's and ours), the emulator.
NEVER_AT_IMPORT = (
    "openlineage",
    "airflow.providers.common.compat.openlineage",
    "airflow.providers.common.compat.lineage",
    "airflow.sdk.lineage",
    "airflow.stats",
    "airflow.models.pool",
    "airflow.sdk.execution_time.cache",
    "pyarrow",
    "airflow.triggers",
    "airflow.providers.standard.triggers",
    f"{PACKAGE}.runtime.lineage",
    f"{PACKAGE}.runtime.metrics",
    f"{PACKAGE}.runtime.budget",
    f"{PACKAGE}.api.budget",
    f"{PACKAGE}.triggers",
    f"{PACKAGE}.testing",
)

#: The analytics models: only the analytics operator needs them when its module is imported.
ANALYTICS_MODELS = (
    f"{PACKAGE}.analytics.query",
    f"{PACKAGE}.analytics.answers",
    f"{PACKAGE}.analytics.split",
)


def loaded_by(statement: str) -> list[str]:
    """The modules ``statement`` loads in a fresh interpreter that has imported ``airflow.sdk``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def offenders(loaded: list[str], lazy: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == name or m.startswith(name + ".") for name in lazy)]


CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hook": (
        ("hooks.openrouter",),
        NEVER_AT_IMPORT
        + ANALYTICS_MODELS
        + (f"{PACKAGE}.runtime.probe", f"{PACKAGE}.lake", f"{PACKAGE}.windows.partitions"),
    ),
    "rankings operators": (
        ("operators.rankings",),
        NEVER_AT_IMPORT + ANALYTICS_MODELS + (f"{PACKAGE}.runtime.probe",),
    ),
    "rankings and analytics operators": (
        ("operators.rankings", "operators.analytics"),
        (*NEVER_AT_IMPORT, f"{PACKAGE}.runtime.probe"),
    ),
    "as_of sensor": (
        ("sensors.as_of",),
        NEVER_AT_IMPORT + ANALYTICS_MODELS + (f"{PACKAGE}.lake",),
    ),
    "session-cost sensor": (
        ("sensors.session_cost",),
        NEVER_AT_IMPORT + ANALYTICS_MODELS + (f"{PACKAGE}.lake",),
    ),
}


@pytest.mark.parametrize("role", list(CASES))
def test_importing_a_role_loads_nothing_it_needs_only_while_running(role: str) -> None:
    modules, lazy = CASES[role]
    statement = "import " + ", ".join(f"{PACKAGE}.{m}" for m in modules)
    loaded = loaded_by(statement)
    assert {f"{PACKAGE}.{m}" for m in modules} <= set(loaded), loaded  # the probe saw the import
    found = offenders(loaded, lazy)
    assert not found, (
        f"{statement!r} (the {role}) loads {found}, modules needed only while a task runs. Import "
        "them inside the functions that use them (under TYPE_CHECKING for annotations), so that "
        "DAG files that use the provider do not pay for them on every parse."
    )


def test_the_check_names_a_module_loaded_at_import_time() -> None:
    loaded = loaded_by(f"import {PACKAGE}.hooks.openrouter, {PACKAGE}.runtime.lineage")
    assert offenders(loaded, NEVER_AT_IMPORT) == [f"{PACKAGE}.runtime.lineage"]
