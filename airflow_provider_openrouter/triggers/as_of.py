"""OpenRouterAsOfTrigger: wait in the triggerer until OpenRouter's ``meta.as_of`` proves a day final.

It makes no request before the day's completion instant, then probes ``rankings-daily`` for that
one day with :meth:`OpenRouterHook.aprobe_day <airflow_provider_openrouter.hooks.openrouter.OpenRouterHook.aprobe_day>`
(the same request, pacing and retries as the sensor's synchronous probe), backing off between probes. A 429 or a spent daily quota waits
for the advertised ``retry_at`` instead of failing. Everything is bounded by an absolute deadline.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe
from airflow_provider_openrouter.triggers.probe import ERROR, SUCCESS, TIMEOUT, ProbeTrigger
from airflow_provider_openrouter.triggers.waiting import aware
from airflow_provider_openrouter.windows.intervals import day_complete_at

__all__ = ["ERROR", "SUCCESS", "TIMEOUT", "OpenRouterAsOfTrigger"]


class OpenRouterAsOfTrigger(ProbeTrigger[probe.ProbeResult]):
    """Fire when ``target_day`` is complete on OpenRouter, or when the deadline passes.

    :param openrouter_conn_id: the ``openrouter`` connection (fetched asynchronously in the triggerer).
    :param target_day: the UTC day to prove complete, ``YYYY-MM-DD``.
    :param deadline: absolute end of the wait (aware datetime or ISO-8601 string).
    :param settle_seconds: extra time after the next UTC midnight before ``as_of`` counts.
    :param poke_interval: shortest wait between probes, seconds.
    :param max_wait: longest wait between probes, seconds.
    :param not_before: no probe before this instant (ISO-8601), e.g. after the sensor's own probe
        or a quota refusal; the completion instant applies anyway.
    :param prior_probes: probes the sensor already spent on this day before deferring.

    The event payload is a dict: ``status`` (``success``, ``timeout`` or ``error``), ``target_day``,
    ``as_of`` and ``end_date`` of the last answer (or ``None``), ``probes``, ``requests`` (HTTP
    requests spent, retries included),
    ``message``, ``base_url`` (public part) and on success ``probe`` (see :func:`airflow_provider_openrouter.runtime.probe.probe_record`).
    """

    def __init__(
        self,
        openrouter_conn_id: str,
        target_day: str,
        deadline: datetime | str,
        settle_seconds: float = 0.0,
        poke_interval: float = 300.0,
        max_wait: float = 3600.0,
        not_before: str | None = None,
        prior_probes: int = 0,
    ) -> None:
        self.target = date.fromisoformat(target_day)
        super().__init__(openrouter_conn_id, deadline, poke_interval, max_wait, prior_probes)
        self.settle_seconds = float(settle_seconds)
        self.not_before = aware(not_before, "not_before") if not_before else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "openrouter_conn_id": self.openrouter_conn_id,
                "target_day": self.target.isoformat(),
                "deadline": self.deadline.isoformat(),
                "settle_seconds": self.settle_seconds,
                "poke_interval": self.poke_interval,
                "max_wait": self.max_wait,
                "not_before": self.not_before.isoformat() if self.not_before else None,
                "prior_probes": self.prior_probes,
            },
        )

    @property
    def complete_at(self) -> datetime:
        return day_complete_at(self.target, timedelta(seconds=self.settle_seconds))

    def first_probe_at(self) -> datetime:
        return max(self.complete_at, self.not_before or self.complete_at)

    def backoff_from(self) -> datetime:
        return self.complete_at

    def unreachable(self, first: datetime) -> str:
        if self.complete_at > self.deadline:
            return (
                f"{self.target} cannot be complete before {self.complete_at.isoformat()}, after the "
                f"deadline {self.deadline.isoformat()}; no request was made"
            )
        return (
            f"No probe is allowed before {first.isoformat()}, after the deadline "
            f"{self.deadline.isoformat()}"
        )

    def log_waiting(self, first: datetime) -> None:
        self.log.info(
            "Waiting without a request until %s (%s can be complete from %s).",
            first.isoformat(),
            self.target,
            self.complete_at.isoformat(),
        )

    async def aprobe(self, hook: OpenRouterHook, remaining: float) -> probe.ProbeOutcome:
        settle = timedelta(seconds=self.settle_seconds)
        return await hook.aprobe_day(self.target, settle, deadline=remaining)

    def read(self, outcome: Any, probes: int) -> tuple[probe.ProbeResult, bool]:
        if isinstance(outcome, probe.NotServedYet):
            self.log.info(
                "Probe %d: %s (%s).", probes, outcome.result.describe(), outcome.api_message
            )
            return outcome.result, False
        result: probe.ProbeResult = outcome.result
        if not result.complete:
            self.log.info("Probe %d: %s.", probes, result.describe())
        return result, result.complete

    def deadline_passed(self, last: probe.ProbeResult | None) -> str:
        return f"; {last.describe() if last else f'{self.target} was not proven complete'}"

    def refused_past_deadline(self, last: probe.ProbeResult | None) -> str:
        return f"; {last.describe() if last else 'no answer yet'}"

    def payload(
        self, status: str, last: probe.ProbeResult | None, counts: dict[str, Any]
    ) -> dict[str, Any]:
        record = None
        if status == SUCCESS and last is not None:
            record = probe.probe_record(
                last, counts["base_url"], self.openrouter_conn_id, probe.utcnow()
            )
        return {
            "status": status,
            "target_day": self.target.isoformat(),
            "as_of": last.as_of.isoformat() if last and last.as_of else None,
            "end_date": last.end_date.isoformat() if last and last.end_date else None,
            **counts,
            "probe": record,
        }
