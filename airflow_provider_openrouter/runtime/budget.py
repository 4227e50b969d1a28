"""The shared request budget's store: Airflow Variables, which every worker already reaches.

Tasks on any executor (Celery, Kubernetes, local) read and write Variables through the API server
(Airflow 3's Task SDK), so :class:`~airflow_provider_openrouter.api.budget.SharedBudget` paces
every process that uses one API key without extra infrastructure and without pools. The slots are
Variables ``openrouter_budget__<key fingerprint>__<n>`` (at most ``2 * requests_per_minute + 8``
per key, values ``"<slot>:<random token>"``; no secret, safe to delete at any time).

Outside a task (a script, a test without Airflow) the Variables cannot be reached: the first
failure is logged once and the hook paces inside its process only.
"""

from __future__ import annotations

import logging
import threading

from airflow_provider_openrouter.api.budget import BudgetUnavailableError, SharedBudget

log = logging.getLogger(__name__)

VARIABLE_PREFIX = "openrouter_budget__"
DESCRIPTION = "OpenRouter shared request budget: one booked slot of an API key (safe to delete)."


class VariableSlotStore:
    """:class:`~airflow_provider_openrouter.api.budget.SlotStore` on Airflow Variables."""

    def read(self, name: str) -> str | None:
        from airflow.sdk import Variable

        key = VARIABLE_PREFIX + name
        try:
            from airflow.sdk.execution_time.cache import SecretCache

            SecretCache.invalidate_variable(key)  # with [secrets] use_cache a cached slot is stale
        except Exception:
            pass
        try:
            value = Variable.get(key, default=None)
        except Exception as exc:
            raise BudgetUnavailableError(
                f"cannot read Variable {key}: {type(exc).__name__}: {exc}"
            ) from None
        return None if value is None else str(value)

    def write(self, name: str, value: str) -> None:
        from airflow.sdk import Variable

        try:
            Variable.set(VARIABLE_PREFIX + name, value, description=DESCRIPTION)
        except Exception as exc:
            raise BudgetUnavailableError(
                f"cannot write Variable {VARIABLE_PREFIX + name}: {exc}"
            ) from None


class VariableBudget:
    """The budget of one key on Variables, falling back to no shared pacing when they are unreachable."""

    def __init__(self, key_fingerprint: str, requests_per_minute: int) -> None:
        self.budget = SharedBudget(VariableSlotStore(), key_fingerprint, requests_per_minute)
        self.available = True

    def reserve(self) -> float:
        if not self.available:
            return 0.0
        try:
            return self.budget.reserve()
        except BudgetUnavailableError as exc:
            self.available = False
            if _in_task():
                log.info(
                    "No shared request budget here (%s): pacing within this process only.", exc
                )
            else:  # a script or a shell: Variables are a task's; nothing is wrong
                log.debug("Outside an Airflow task: pacing within this process only (%s).", exc)
            return 0.0


def _in_task() -> bool:
    """Whether this process runs an Airflow task (the only place the Task SDK reaches Variables)."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover - Airflow without the Task SDK
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


_budgets: dict[tuple[str, int], VariableBudget] = {}
_lock = threading.Lock()


def shared_budget(key_fingerprint: str, requests_per_minute: int) -> VariableBudget:
    """The process-wide shared budget of one key (by fingerprint, never the key)."""
    with _lock:
        name = (key_fingerprint, requests_per_minute)
        budget = _budgets.get(name)
        if budget is None:
            budget = _budgets[name] = VariableBudget(key_fingerprint, requests_per_minute)
        return budget
