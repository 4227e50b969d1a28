"""Triggers stored by deferred tasks keep working: the classpath and kwargs that a deferral writes to
the metadata DB are fixed, and a stored trigger is rebuilt from them as the triggerer rebuilds it
(serde round trip, class imported from its classpath) and runs.

The literals below are what the triggers serialized before they shared
:class:`~airflow_provider_openrouter.triggers.probe.ProbeTrigger`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.sdk.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize

from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger
from airflow_provider_openrouter.triggers.session_cost import OpenRouterSessionCostTrigger

from .conftest import Api, run_trigger, utc_today

AS_OF = "airflow_provider_openrouter.triggers.as_of.OpenRouterAsOfTrigger"
SESSION_COST = "airflow_provider_openrouter.triggers.session_cost.OpenRouterSessionCostTrigger"

#: (trigger as the sensors build it, its stored classpath and kwargs)
STORED: list[tuple[Any, str, dict[str, Any]]] = [
    (
        OpenRouterAsOfTrigger(
            "openrouter_default",
            "2025-07-04",
            datetime(2025, 7, 6, 3, tzinfo=timezone.utc),
            settle_seconds=900,
            poke_interval=60,
            max_wait=600,
            not_before="2025-07-05T00:20:00+00:00",
            prior_probes=2,
        ),
        AS_OF,
        {
            "openrouter_conn_id": "openrouter_default",
            "target_day": "2025-07-04",
            "deadline": "2025-07-06T03:00:00+00:00",
            "settle_seconds": 900.0,
            "poke_interval": 60.0,
            "max_wait": 600.0,
            "not_before": "2025-07-05T00:20:00+00:00",
            "prior_probes": 2,
        },
    ),
    (
        OpenRouterAsOfTrigger("openrouter_default", "2025-07-04", "2025-07-06T05:00:00+02:00"),
        AS_OF,
        {
            "openrouter_conn_id": "openrouter_default",
            "target_day": "2025-07-04",
            "deadline": "2025-07-06T03:00:00+00:00",
            "settle_seconds": 0.0,
            "poke_interval": 300.0,
            "max_wait": 3600.0,
            "not_before": None,
            "prior_probes": 0,
        },
    ),
    (
        OpenRouterSessionCostTrigger(
            openrouter_conn_id="openrouter_default",
            after="2026-11-16",
            deadline=datetime(2026, 11, 27, tzinfo=timezone.utc),
            not_before="2026-11-24T02:00:00+00:00",
            poke_interval=1800,
            max_wait=21600,
            prior_probes=1,
        ),
        SESSION_COST,
        {
            "openrouter_conn_id": "openrouter_default",
            "after": "2026-11-16",
            "deadline": "2026-11-27T00:00:00+00:00",
            "not_before": "2026-11-24T02:00:00+00:00",
            "poke_interval": 1800.0,
            "max_wait": 21600.0,
            "prior_probes": 1,
        },
    ),
    (
        OpenRouterSessionCostTrigger(
            "openrouter_default", None, "2026-11-27T00:00:00+00:00", "2026-11-24T00:00:00+00:00"
        ),
        SESSION_COST,
        {
            "openrouter_conn_id": "openrouter_default",
            "after": None,
            "deadline": "2026-11-27T00:00:00+00:00",
            "not_before": "2026-11-24T00:00:00+00:00",
            "poke_interval": 1800.0,
            "max_wait": 21600.0,
            "prior_probes": 0,
        },
    ),
]


def rebuild(classpath: str, kwargs: dict[str, Any]) -> Any:
    """A stored trigger as the triggerer rebuilds it."""
    return import_string(classpath)(**deserialize(serialize(kwargs)))


@pytest.mark.parametrize(("trigger", "classpath", "kwargs"), STORED)
def test_serialize_writes_the_stored_classpath_and_kwargs(
    trigger: Any, classpath: str, kwargs: dict[str, Any]
) -> None:
    assert trigger.serialize() == (classpath, kwargs)


@pytest.mark.parametrize(("trigger", "classpath", "kwargs"), STORED)
def test_a_stored_trigger_is_rebuilt_as_it_was(
    trigger: Any, classpath: str, kwargs: dict[str, Any]
) -> None:
    restored = rebuild(classpath, kwargs)
    assert type(restored) is type(trigger)
    assert restored.serialize() == (classpath, kwargs)


def test_a_stored_as_of_trigger_runs_to_success(api: Api) -> None:
    target = utc_today() - timedelta(days=1)
    stored = dict(
        STORED[0][2],
        openrouter_conn_id=api.conn_id,
        target_day=target.isoformat(),
        deadline=(datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat(),
        settle_seconds=0.0,
        not_before=None,
        poke_interval=0.1,
        max_wait=0.2,
    )
    event = run_trigger(rebuild(AS_OF, stored))
    assert (event["status"], event["target_day"], event["probes"]) == (
        "success",
        target.isoformat(),
        3,  # the two stored prior probes and this one
    )
    assert event["probe"]["window"]["end"] >= target.isoformat()


def test_a_stored_session_cost_trigger_runs_to_success(api: Api) -> None:
    current = api.emulator.session_cost_window_end()
    assert current is not None
    now = datetime.now(timezone.utc)
    stored = dict(
        STORED[2][2],
        openrouter_conn_id=api.conn_id,
        after=(current - timedelta(days=7)).isoformat(),
        deadline=(now + timedelta(seconds=30)).isoformat(),
        not_before=now.isoformat(),
        poke_interval=0.1,
        max_wait=0.2,
    )
    event = run_trigger(rebuild(SESSION_COST, stored))
    assert (event["status"], event["probes"], event["meta"]["window_end_date"]) == (
        "success",
        2,  # the stored prior probe and this one
        current.isoformat(),
    )
