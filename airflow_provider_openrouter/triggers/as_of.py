"""OpenRouterAsOfTrigger: wait in the triggerer until OpenRouter's ``meta.as_of`` proves a day final.

It makes no request before the day's completion instant, then probes ``rankings-daily`` for that
one day with :meth:`OpenRouterHook.aprobe_day <airflow_provider_openrouter.hooks.openrouter.OpenRouterHook.aprobe_day>`
(the same request, pacing and retries as the sensor's synchronous probe), backing off between probes. A 429 or a spent daily quota waits
for the advertised ``retry_at`` instead of failing. Everything is bounded by an absolute deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_openrouter.exceptions import OpenRouterError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe
from airflow_provider_openrouter.runtime.as_of_memory import public_base_url
from airflow_provider_openrouter.triggers.waiting import aware, sleep_until
from airflow_provider_openrouter.windows.intervals import day_complete_at

#: Values of ``event["status"]``.
SUCCESS, TIMEOUT, ERROR = "success", "timeout", "error"
#: Longest single sleep, so that a changed system clock is noticed.


class OpenRouterAsOfTrigger(BaseTrigger):
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
        super().__init__()
        self.openrouter_conn_id = openrouter_conn_id
        self.target = date.fromisoformat(target_day)
        self.deadline = aware(deadline, "deadline")
        self.settle_seconds = float(settle_seconds)
        self.poke_interval = float(poke_interval)
        self.max_wait = float(max_wait)
        self.not_before = aware(not_before, "not_before") if not_before else None
        self.prior_probes = int(prior_probes)

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        probes = self.prior_probes
        last: probe.ProbeResult | None = None
        client: Any = None

        def event(status: str, message: str, record: dict[str, Any] | None = None) -> TriggerEvent:
            requests = client.request_count if client is not None else 0
            self.log.info(
                "%s (%d probe(s), %d request(s) against the daily quota).",
                message,
                probes,
                requests,
            )
            return TriggerEvent(
                {
                    "status": status,
                    "target_day": self.target.isoformat(),
                    "as_of": last.as_of.isoformat() if last and last.as_of else None,
                    "end_date": last.end_date.isoformat() if last and last.end_date else None,
                    "probes": probes,
                    "requests": requests,
                    "message": message,
                    "base_url": public_base_url(client.base_url) if client is not None else None,
                    "probe": record,
                }
            )

        if self.complete_at > self.deadline:
            yield event(
                TIMEOUT,
                f"{self.target} cannot be complete before {self.complete_at.isoformat()}, after the "
                f"deadline {self.deadline.isoformat()}; no request was made",
            )
            return
        first = max(self.complete_at, self.not_before or self.complete_at)
        if first > self.deadline:
            yield event(
                TIMEOUT,
                f"No probe is allowed before {first.isoformat()}, after the deadline "
                f"{self.deadline.isoformat()}",
            )
            return
        if probe.utcnow() < first:
            self.log.info(
                "Waiting without a request until %s (%s can be complete from %s).",
                first.isoformat(),
                self.target,
                self.complete_at.isoformat(),
            )
            await sleep_until(first)

        try:
            hook = OpenRouterHook(self.openrouter_conn_id)
            client = await hook.aget_conn()
        except Exception as exc:
            yield event(
                ERROR,
                f"Cannot use connection {self.openrouter_conn_id!r}: {type(exc).__name__}: {exc}",
            )
            return
        settle = timedelta(seconds=self.settle_seconds)

        def timed_out() -> TriggerEvent:
            return event(
                TIMEOUT,
                f"The deadline {self.deadline.isoformat()} passed; "
                f"{last.describe() if last else f'{self.target} was not proven complete'}",
            )

        while True:
            remaining = (self.deadline - probe.utcnow()).total_seconds()
            if remaining <= 0:
                yield timed_out()
                return
            not_before: datetime | None = None
            probes += 1
            try:
                outcome = await asyncio.wait_for(
                    hook.aprobe_day(self.target, settle, deadline=remaining), timeout=remaining
                )
            except asyncio.TimeoutError:  # the deadline fell during this probe
                yield timed_out()
                return
            except OpenRouterError as exc:
                yield event(ERROR, str(exc))
                return
            if isinstance(outcome, probe.RetryAt):
                not_before = outcome.moment or probe.utcnow() + timedelta(
                    seconds=self.poke_interval
                )
                self.log.warning(
                    "Probe %d was refused (%s); waiting until %s.",
                    probes,
                    outcome.reason,
                    not_before.isoformat(),
                )
            elif isinstance(outcome, probe.TransientFailure):
                self.log.warning("Probe %d failed (%s); backing off.", probes, outcome.reason)
            elif isinstance(outcome, probe.NotServedYet):
                last = outcome.result
                self.log.info("Probe %d: %s (%s).", probes, last.describe(), outcome.api_message)
            else:
                last = outcome.result
                if last.complete:
                    record = probe.probe_record(
                        last,
                        public_base_url(client.base_url),
                        self.openrouter_conn_id,
                        probe.utcnow(),
                    )
                    yield event(SUCCESS, f"{last.describe()} after {probes} probe(s)", record)
                    return
                self.log.info("Probe %d: %s.", probes, last.describe())

            now = probe.utcnow()
            if not_before is None:
                not_before = now + timedelta(
                    seconds=probe.next_probe_delay(
                        now, self.complete_at, self.poke_interval, self.max_wait
                    )
                )
            elif not_before > self.deadline:
                yield event(
                    TIMEOUT,
                    f"OpenRouter accepts requests again at {not_before.isoformat()}, after the deadline "
                    f"{self.deadline.isoformat()}; {last.describe() if last else 'no answer yet'}",
                )
                return
            await sleep_until(min(not_before, self.deadline))
