"""The shared request budget on Airflow Variables as the hook wires it: on by default for a key at the
API's pace, off when asked or for fast keys, and a one-time fallback where Variables are unreachable."""

from __future__ import annotations

from typing import Any


def test_the_hook_paces_in_process_only_where_variables_are_unreachable(
    openrouter_emulator: Any, openrouter_conn: Any
) -> None:
    """Outside a task (no Task SDK supervisor) Variables cannot be written: one try, then no more, no failure."""
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
    from airflow_provider_openrouter.runtime import budget as runtime_budget

    runtime_budget._budgets.clear()
    conn_id = openrouter_conn(openrouter_emulator, requests_per_minute=30)
    hook = OpenRouterHook(conn_id)
    hook.get_rankings_daily("2025-03-01", "2025-03-01")
    hook.get_rankings_daily("2025-03-02", "2025-03-02")
    shared = hook.get_conn().budget
    assert shared is not None and not shared.available
    assert shared.budget.writes == 1, "after the first failed write the budget is not tried again"
    assert hook.request_count == 2


def test_the_shared_budget_can_be_turned_off_and_is_off_for_fast_keys(
    openrouter_emulator: Any, openrouter_conn: Any
) -> None:
    from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook

    off = openrouter_conn(
        openrouter_emulator, conn_id="budget_off", requests_per_minute=30, shared_budget="false"
    )
    assert OpenRouterHook(off).get_conn().budget is None
    fast = openrouter_conn(openrouter_emulator, conn_id="budget_fast", requests_per_minute=10000)
    assert OpenRouterHook(fast).get_conn().budget is None
    on = openrouter_conn(openrouter_emulator, conn_id="budget_on", requests_per_minute=30)
    assert OpenRouterHook(on).get_conn().budget is not None
