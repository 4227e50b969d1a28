"""The Airflow pool every task that calls OpenRouter should run in: its name, and who needs it.

The shared request budget (:mod:`airflow_provider_openrouter.runtime.budget`) keeps the key inside
its per-minute limit on its own; the pool is the coarse limit on top: it caps how many worker
slots wait on that budget at once, so OpenRouter tasks cannot crowd out the rest of a deployment.

* Name: ``openrouter``, or the environment variable ``OPENROUTER_POOL`` where the DAG is parsed
  (set it to ``default_pool`` to opt out).
* Who needs it: the classes in :data:`POOL_TASK_CLASSES` (every operator and sensor of this
  provider that sends requests). The example DAGs pass ``pool=openrouter_pool()`` to each of them.
* Create it once: ``airflow pools set openrouter 4 "OpenRouter Data API"`` (``scripts/demo.py``
  does). A task whose pool does not exist is never queued: Airflow 3.3 shows no error in the UI,
  it only logs ``Tasks using non-existent pool 'openrouter' will not be scheduled`` in the
  scheduler and leaves the task *scheduled*. ``python -m airflow_provider_openrouter.runtime.pool``
  checks it (exit status 1 and what to run when the pool is missing).
"""

from __future__ import annotations

import os
import sys

POOL_ENV = "OPENROUTER_POOL"
DEFAULT_POOL = "openrouter"
DEFAULT_SLOTS = 4
DESCRIPTION = "OpenRouter Data API: every task that calls it (30 requests/minute per key)"

#: The task classes that call OpenRouter (by import path, so this module imports none of them).
POOL_TASK_CLASSES = (
    "airflow_provider_openrouter.operators.rankings.RankingsDailyOperator",
    "airflow_provider_openrouter.operators.rankings.AppRankingsOperator",
    "airflow_provider_openrouter.operators.analytics.AnalyticsQueryOperator",
    "airflow_provider_openrouter.operators.session_cost.SessionCostOperator",
    "airflow_provider_openrouter.sensors.as_of.OpenRouterAsOfSensor",
    "airflow_provider_openrouter.sensors.session_cost.OpenRouterSessionCostSensor",
)


def openrouter_pool() -> str:
    """The pool name for tasks that call OpenRouter: ``$OPENROUTER_POOL`` or ``openrouter``."""
    return (os.environ.get(POOL_ENV) or "").strip() or DEFAULT_POOL


def missing_pool_message(name: str) -> str:
    return (
        f"The Airflow pool {name!r} does not exist, so Airflow will never queue the OpenRouter tasks "
        f"that use it (they stay 'scheduled'; the scheduler log says \"Tasks using non-existent pool\"). "
        f'Create it: airflow pools set {name} {DEFAULT_SLOTS} "{DESCRIPTION}" '
        f"(or set {POOL_ENV} to an existing pool where the DAGs are parsed)."
    )


def main(argv: list[str] | None = None) -> int:
    """Check (``--create``: create) the pool in this Airflow installation's metadata DB."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_openrouter.runtime.pool", description=main.__doc__
    )
    parser.add_argument(
        "--create", action="store_true", help="create it with --slots slots if missing"
    )
    parser.add_argument("--slots", type=int, default=DEFAULT_SLOTS)
    args = parser.parse_args(argv)
    name = openrouter_pool()
    from airflow.models.pool import Pool

    if Pool.get_pool(name) is not None:
        print(f"Pool {name!r} exists.")
        return 0
    if args.create:
        Pool.create_or_update_pool(name, args.slots, DESCRIPTION, include_deferred=False)
        print(f"Created pool {name!r} with {args.slots} slots.")
        return 0
    print(missing_pool_message(name), file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
