"""OpenRouterSessionCostTrigger: wait in the triggerer for a session-cost snapshot newer than a day.

It makes no request before ``not_before`` (the instant from which the awaited weekly snapshot can
exist), then probes ``GET /datasets/session-cost?limit=1&offset=0`` with
:meth:`OpenRouterHook.aprobe_session_cost <airflow_provider_openrouter.hooks.openrouter.OpenRouterHook.aprobe_session_cost>`
(the hook's paced, retrying HTTP path), backing off between probes. A 429 or a spent daily quota waits
for the advertised ``retry_at``. Everything is bounded by an absolute deadline.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow_provider_openrouter.api.datasets import session_cost
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.triggers.probe import ERROR, SUCCESS, TIMEOUT, ProbeTrigger
from airflow_provider_openrouter.triggers.waiting import aware

__all__ = ["ERROR", "SUCCESS", "TIMEOUT", "OpenRouterSessionCostTrigger"]


class OpenRouterSessionCostTrigger(ProbeTrigger[session_cost.SessionCostMeta]):
    """Fire when OpenRouter publishes a session-cost snapshot ending after ``after``, or at the deadline.

    :param openrouter_conn_id: the ``openrouter`` connection (fetched asynchronously in the triggerer).
    :param after: ``YYYY-MM-DD``: succeed on a snapshot whose ``window_end_date`` is later; None: on
        any published snapshot.
    :param deadline: absolute end of the wait (aware datetime or ISO-8601 string).
    :param not_before: absolute instant of the first probe (aware datetime or ISO-8601 string).
    :param poke_interval: shortest wait between probes, seconds.
    :param max_wait: longest wait between probes, seconds.
    :param prior_probes: probes the sensor already spent before deferring.

    The event payload is a dict: ``status`` (``success``, ``timeout`` or ``error``), ``after``,
    ``meta`` (the last answer's ``meta`` verbatim, or None), ``probes``, ``requests`` (HTTP
    requests spent, retries included), ``message`` and ``base_url`` (public part).
    """

    def __init__(
        self,
        openrouter_conn_id: str,
        after: str | None,
        deadline: datetime | str,
        not_before: datetime | str,
        poke_interval: float = 1800.0,
        max_wait: float = 6 * 3600.0,
        prior_probes: int = 0,
    ) -> None:
        self.after = date.fromisoformat(after) if after else None
        super().__init__(openrouter_conn_id, deadline, poke_interval, max_wait, prior_probes)
        self.not_before = aware(not_before, "not_before")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "openrouter_conn_id": self.openrouter_conn_id,
                "after": self.after.isoformat() if self.after else None,
                "deadline": self.deadline.isoformat(),
                "not_before": self.not_before.isoformat(),
                "poke_interval": self.poke_interval,
                "max_wait": self.max_wait,
                "prior_probes": self.prior_probes,
            },
        )

    def _awaited(self) -> str:
        return (
            f"a session-cost snapshot ending after {self.after}"
            if self.after
            else "a published session-cost snapshot"
        )

    def first_probe_at(self) -> datetime:
        return self.not_before

    def backoff_from(self) -> datetime:
        return self.not_before

    def unreachable(self, first: datetime) -> str:
        return (
            f"{self._awaited()} cannot exist before {first.isoformat()}, after the "
            f"deadline {self.deadline.isoformat()}; no request was made"
        )

    def log_waiting(self, first: datetime) -> None:
        self.log.info(
            "Waiting without a request until %s, when %s can exist.",
            first.isoformat(),
            self._awaited(),
        )

    async def aprobe(self, hook: OpenRouterHook, remaining: float) -> Any:
        return await hook.aprobe_session_cost(deadline=remaining)

    def read(self, outcome: Any, probes: int) -> tuple[session_cost.SessionCostMeta, bool]:
        meta: session_cost.SessionCostMeta = outcome
        if session_cost.is_newer(meta, self.after):
            return meta, True
        self.log.info(
            "Probe %d: %s; still waiting for %s.", probes, meta.describe(), self._awaited()
        )
        return meta, False

    def deadline_passed(self, last: session_cost.SessionCostMeta | None) -> str:
        return f" without {self._awaited()}{f'; last seen: {last.describe()}' if last else ''}"

    def payload(
        self, status: str, last: session_cost.SessionCostMeta | None, counts: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "status": status,
            "after": self.after.isoformat() if self.after else None,
            "meta": dict(last.raw) if last is not None else None,
            **counts,
        }
