"""ProbeTrigger: the wait-then-probe loop the deferrable sensors' triggers share.

A trigger makes no request before its first allowed instant, then probes through the hook (paced
and retried there), backing off between probes from ``poke_interval`` to ``max_wait``. A 429 or a
spent daily quota waits for the advertised ``retry_at`` instead of failing. Everything is bounded
by an absolute deadline. A subclass says what it waits for: its probe, when an answer proves it,
the event's fields and the wording of its messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_openrouter.exceptions import OpenRouterError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe
from airflow_provider_openrouter.runtime.variables import public_base_url
from airflow_provider_openrouter.triggers.waiting import aware, sleep_until

#: Values of ``event["status"]``.
SUCCESS, TIMEOUT, ERROR = "success", "timeout", "error"


class Described(Protocol):
    def describe(self) -> str: ...


#: What a probe's answer is read into (the last one is reported in the event).
Answer = TypeVar("Answer", bound=Described)


class ProbeTrigger(BaseTrigger, Generic[Answer]):
    """Probe through the hook from :meth:`first_probe_at` until an answer proves what is awaited.

    :param openrouter_conn_id: the ``openrouter`` connection (fetched asynchronously in the triggerer).
    :param deadline: absolute end of the wait (aware datetime or ISO-8601 string).
    :param poke_interval: shortest wait between probes, seconds.
    :param max_wait: longest wait between probes, seconds.
    :param prior_probes: probes the sensor already spent before deferring.
    """

    def __init__(
        self,
        openrouter_conn_id: str,
        deadline: datetime | str,
        poke_interval: float,
        max_wait: float,
        prior_probes: int,
    ) -> None:
        super().__init__()
        self.openrouter_conn_id = openrouter_conn_id
        self.deadline = aware(deadline, "deadline")
        self.poke_interval = float(poke_interval)
        self.max_wait = float(max_wait)
        self.prior_probes = int(prior_probes)

    # ------------------------------------------------------------------ what a subclass says
    def first_probe_at(self) -> datetime:
        """No request before this instant."""
        raise NotImplementedError

    def backoff_from(self) -> datetime:
        """The instant the backoff between probes counts from."""
        raise NotImplementedError

    def unreachable(self, first: datetime) -> str:
        """The timeout message when ``first`` falls after the deadline (no request is made)."""
        raise NotImplementedError

    def log_waiting(self, first: datetime) -> None:
        """Log the wait without a request until ``first``."""
        raise NotImplementedError

    async def aprobe(self, hook: OpenRouterHook, remaining: float) -> Any:
        """Spend one probe through the hook, within ``remaining`` seconds."""
        raise NotImplementedError

    def read(self, outcome: Any, probes: int) -> tuple[Answer, bool]:
        """The answer of a probe that was served, and whether it proves what is awaited (if not,
        the answer is logged here)."""
        raise NotImplementedError

    def deadline_passed(self, last: Answer | None) -> str:
        """The end of the message when the deadline passes, after ``The deadline ... passed``."""
        raise NotImplementedError

    def refused_past_deadline(self, last: Answer | None) -> str:
        """The end of the message when ``retry_at`` falls after the deadline."""
        return ""

    def payload(self, status: str, last: Answer | None, counts: dict[str, Any]) -> dict[str, Any]:
        """The event's payload: ``status``, this trigger's fields (``last`` is the last answer,
        the one that proves what is awaited on success) and ``counts`` (``probes``, ``requests``,
        ``message``, ``base_url``)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ the loop
    async def run(self) -> AsyncIterator[TriggerEvent]:
        probes = self.prior_probes
        last: Answer | None = None
        client: Any = None

        def event(status: str, message: str) -> TriggerEvent:
            requests = client.request_count if client is not None else 0
            self.log.info(
                "%s (%d probe(s), %d request(s) against the daily quota).",
                message,
                probes,
                requests,
            )
            counts = {
                "probes": probes,
                "requests": requests,
                "message": message,
                "base_url": public_base_url(client.base_url) if client is not None else None,
            }
            return TriggerEvent(self.payload(status, last, counts))

        first = self.first_probe_at()
        if first > self.deadline:
            yield event(TIMEOUT, self.unreachable(first))
            return
        if probe.utcnow() < first:
            self.log_waiting(first)
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

        def timed_out() -> TriggerEvent:
            return event(
                TIMEOUT,
                f"The deadline {self.deadline.isoformat()} passed{self.deadline_passed(last)}",
            )

        while True:
            remaining = (self.deadline - probe.utcnow()).total_seconds()
            if remaining <= 0:
                yield timed_out()
                return
            retry_at: datetime | None = None
            probes += 1
            try:
                outcome = await asyncio.wait_for(self.aprobe(hook, remaining), timeout=remaining)
            except asyncio.TimeoutError:  # the deadline fell during this probe
                yield timed_out()
                return
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
                last, proven = self.read(outcome, probes)
                if proven:
                    yield event(SUCCESS, f"{last.describe()} after {probes} probe(s)")
                    return

            now = probe.utcnow()
            if retry_at is None:
                retry_at = now + timedelta(
                    seconds=probe.next_probe_delay(
                        now, self.backoff_from(), self.poke_interval, self.max_wait
                    )
                )
            elif retry_at > self.deadline:
                yield event(
                    TIMEOUT,
                    f"OpenRouter accepts requests again at {retry_at.isoformat()}, after the deadline "
                    f"{self.deadline.isoformat()}{self.refused_past_deadline(last)}",
                )
                return
            await sleep_until(min(retry_at, self.deadline))
