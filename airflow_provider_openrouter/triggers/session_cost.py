"""OpenRouterSessionCostTrigger: wait in the triggerer for a session-cost snapshot newer than a day.

It makes no request before ``not_before`` (the instant from which the awaited weekly snapshot can
exist), then probes ``GET /datasets/session-cost?limit=1&offset=0`` with
:meth:`OpenRouterHook.aprobe_session_cost <airflow_provider_openrouter.hooks.openrouter.OpenRouterHook.aprobe_session_cost>`
(the hook's paced, retrying HTTP path), backing off between probes. A 429 or a spent daily quota waits
for the advertised ``retry_at``. Everything is bounded by an absolute deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_openrouter.api.datasets import session_cost
from airflow_provider_openrouter.exceptions import OpenRouterError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe
from airflow_provider_openrouter.runtime.as_of_memory import public_base_url
from airflow_provider_openrouter.triggers.waiting import aware, sleep_until

#: Values of ``event["status"]``.
SUCCESS, TIMEOUT, ERROR = "success", "timeout", "error"
#: Longest single sleep, so that a changed system clock is noticed.


class OpenRouterSessionCostTrigger(BaseTrigger):
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
        super().__init__()
        self.openrouter_conn_id = openrouter_conn_id
        self.after = date.fromisoformat(after) if after else None
        self.deadline = aware(deadline, "deadline")
        self.not_before = aware(not_before, "not_before")
        self.poke_interval = float(poke_interval)
        self.max_wait = float(max_wait)
        self.prior_probes = int(prior_probes)

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        probes = self.prior_probes
        last: session_cost.SessionCostMeta | None = None
        client: Any = None

        def event(status: str, message: str) -> TriggerEvent:
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
                    "after": self.after.isoformat() if self.after else None,
                    "meta": dict(last.raw) if last is not None else None,
                    "probes": probes,
                    "requests": requests,
                    "message": message,
                    "base_url": public_base_url(client.base_url) if client is not None else None,
                }
            )

        if self.not_before > self.deadline:
            yield event(
                TIMEOUT,
                f"{self._awaited()} cannot exist before {self.not_before.isoformat()}, after the "
                f"deadline {self.deadline.isoformat()}; no request was made",
            )
            return
        if probe.utcnow() < self.not_before:
            self.log.info(
                "Waiting without a request until %s, when %s can exist.",
                self.not_before.isoformat(),
                self._awaited(),
            )
            await sleep_until(self.not_before)

        try:
            hook = OpenRouterHook(self.openrouter_conn_id)
            client = await hook.aget_conn()
        except Exception as exc:
            yield event(
                ERROR,
                f"Cannot use connection {self.openrouter_conn_id!r}: {type(exc).__name__}: {exc}",
            )
            return

        while True:
            remaining = (self.deadline - probe.utcnow()).total_seconds()
            if remaining <= 0:
                yield event(
                    TIMEOUT,
                    f"The deadline {self.deadline.isoformat()} passed without {self._awaited()}"
                    f"{f'; last seen: {last.describe()}' if last else ''}",
                )
                return
            retry_at: datetime | None = None
            probes += 1
            try:
                outcome = await asyncio.wait_for(
                    hook.aprobe_session_cost(deadline=remaining), timeout=remaining
                )
            except asyncio.TimeoutError:
                continue  # the deadline fell during this probe: the loop reports it
            except OpenRouterError as exc:
                yield event(ERROR, str(exc))
                return
            if isinstance(outcome, probe.RetryAt):
                retry_at = outcome.moment or probe.utcnow() + timedelta(seconds=self.poke_interval)
                self.log.warning(
                    "Probe %d was refused (%s); waiting until %s.",
                    probes,
                    outcome.reason,
                    retry_at.isoformat(),
                )
            elif isinstance(outcome, probe.TransientFailure):
                self.log.warning("Probe %d failed (%s); backing off.", probes, outcome.reason)
            else:
                last = outcome
                if session_cost.is_newer(last, self.after):
                    yield event(SUCCESS, f"{last.describe()} after {probes} probe(s)")
                    return
                self.log.info(
                    "Probe %d: %s; still waiting for %s.", probes, last.describe(), self._awaited()
                )
            now = probe.utcnow()
            if retry_at is None:
                retry_at = now + timedelta(
                    seconds=probe.next_probe_delay(
                        now, self.not_before, self.poke_interval, self.max_wait
                    )
                )
            elif retry_at > self.deadline:
                yield event(
                    TIMEOUT,
                    f"OpenRouter accepts requests again at {retry_at.isoformat()}, after the deadline "
                    f"{self.deadline.isoformat()}",
                )
                return
            await sleep_until(min(retry_at, self.deadline))
