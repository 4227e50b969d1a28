"""Airflow names that moved between 3.0 and 3.3, imported from one place.

The provider supports Airflow 3.0 and newer. Everything that Airflow moved (``BaseHook`` and the
exceptions into the task SDK in 3.1/3.2, ``conf`` into ``airflow.sdk.configuration``, ``DagBag``
into ``airflow.dag_processing``) is imported here from its newest home, falling back to the old
one, so that the rest of the package imports each name once, from this module.

Names that exist only in newer Airflow (partitioned scheduling) are resolved on first use: on an
older Airflow, importing them raises :class:`AirflowVersionError` (an ``ImportError``) whose
message names the Airflow version the feature needs and the one installed.

This module is the bottom layer: it imports only Airflow and the standard library.
"""

from __future__ import annotations

import asyncio
import importlib
import re
from typing import TYPE_CHECKING, Any

import airflow

__all__ = [
    "AIRFLOW_VERSION",
    "AirflowException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowVersionError",
    "BaseHook",
    "CronPartitionTimetable",
    "DagBag",
    "PartitionedAssetTimetable",
    "RollupMapper",
    "StartOfWeekMapper",
    "WeekWindow",
    "aget_connection",
    "conf",
    "require_airflow",
]


def _parse(version: str) -> tuple[int, int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", version.split("+")[0])[:3]]
    numbers += [0] * (3 - len(numbers))
    return numbers[0], numbers[1], numbers[2]


#: The installed Airflow as ``(major, minor, micro)``; dev/rc suffixes are ignored.
AIRFLOW_VERSION: tuple[int, int, int] = _parse(airflow.__version__)


class AirflowVersionError(ImportError):
    """A feature of this provider needs a newer Airflow than the one installed."""


def require_airflow(minimum: str, feature: str) -> None:
    """Raise :class:`AirflowVersionError` unless the installed Airflow is at least ``minimum``."""
    if _parse(minimum) > AIRFLOW_VERSION:
        raise AirflowVersionError(
            f"{feature} needs Airflow {minimum} or newer; this is Airflow {airflow.__version__}. "
            f"Upgrade Airflow to {minimum} or newer to use it."
        )


if TYPE_CHECKING:  # the newest locations; the fallbacks below are for Airflow 3.0 and 3.1
    from airflow.sdk import BaseHook
    from airflow.sdk.configuration import conf
    from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException
else:
    try:  # Airflow 3.1+
        from airflow.sdk import BaseHook
    except ImportError:  # Airflow 3.0
        from airflow.hooks.base import BaseHook

    try:  # Airflow 3.1+ (AirflowException), 3.2+ (the others)
        from airflow.sdk.exceptions import (
            AirflowException,
            AirflowSensorTimeout,
            AirflowSkipException,
        )
    except ImportError:  # the same classes, from their older home
        from airflow.exceptions import AirflowException, AirflowSensorTimeout, AirflowSkipException

    try:  # Airflow 3.1+
        from airflow.sdk.configuration import conf
    except ImportError:
        from airflow.configuration import conf


async def aget_connection(conn_id: str) -> Any:
    """``BaseHook.aget_connection`` (Airflow 3.1+); on 3.0 the blocking lookup in a worker thread."""
    if hasattr(BaseHook, "aget_connection"):
        return await BaseHook.aget_connection(conn_id)
    return await asyncio.to_thread(BaseHook.get_connection, conn_id)


if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import (
        CronPartitionTimetable,
        PartitionedAssetTimetable,
        RollupMapper,
        StartOfWeekMapper,
        WeekWindow,
    )

#: Names imported on first access: ``name -> ((module, ...) tried in order, Airflow version needed)``.
#: ``DagBag`` is lazy because importing it loads much of Airflow's core.
_LAZY: dict[str, tuple[tuple[str, ...], str]] = {
    "DagBag": (("airflow.dag_processing.dagbag", "airflow.models.dagbag"), "3.0"),
    "CronPartitionTimetable": (("airflow.sdk",), "3.2"),
    "PartitionedAssetTimetable": (("airflow.sdk",), "3.2"),
    "StartOfWeekMapper": (("airflow.sdk",), "3.2"),
    "RollupMapper": (("airflow.sdk",), "3.3"),
    "WeekWindow": (("airflow.sdk",), "3.3"),
}

#: What each version-gated name belongs to, for the error message.
_FEATURE = "partitioned scheduling (CronPartitionTimetable, PartitionedAssetTimetable, StartOfWeekMapper: 3.2; RollupMapper, WeekWindow: 3.3)"


def __getattr__(name: str) -> Any:
    try:
        modules, minimum = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    for module in modules:
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        globals()[name] = value
        return value
    require_airflow(minimum, f"{name}, part of {_FEATURE},")
    raise ImportError(
        f"cannot import {name} from {' or '.join(modules)} (Airflow {airflow.__version__})"
    )
