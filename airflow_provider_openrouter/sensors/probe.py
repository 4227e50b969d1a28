"""OpenRouterProbeSensor: what the deferrable sensors that wait by probing OpenRouter share.

Such a sensor waits for something the remembered answers (a Variable per connection) may already
show, and that no request can show before a known instant. After that instant it spends one-request
probes through the hook, backing off from ``poke_interval`` to ``max_wait``, until one shows it or
an absolute deadline passes (measured from the first try); a 429 or a spent daily quota waits for
the advertised ``retry_at``. In deferrable mode the wait happens in a trigger, which the subclass
imports where it defers or reads the trigger's event, so that a DAG file that uses the sensor does
not load Airflow's ``airflow.triggers.base``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_openrouter.compat import AirflowException, AirflowSensorTimeout, conf
from airflow_provider_openrouter.exceptions import InvalidParameterError, OpenRouterError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from airflow_provider_openrouter.triggers.probe import ProbeTrigger

#: Extra time given to Airflow's own deferral timeout, so that the trigger's clearer event wins.
DEFERRAL_GRACE = timedelta(minutes=5)

Outcome = TypeVar("Outcome")


class OpenRouterProbeSensor(BaseSensorOperator):
    """Memory first, then the clock, then probes; in the triggerer when ``deferrable``.

    A subclass resolves what the run waits for (:meth:`begin`), recalls it (:meth:`recalled`), says
    from when a probe can show it (:meth:`first_probe_at`), spends a probe (:meth:`probe_once`)
    and builds its trigger (:meth:`trigger`). It also resumes from the trigger's event
    (``execute_complete``), with :meth:`report_event` for the part every sensor shares.
    """

    template_fields = ("openrouter_conn_id",)
    #: ``max_wait`` in seconds when it is None.
    default_max_wait_seconds = 3600.0

    def __init__(
        self,
        *,
        openrouter_conn_id: str,
        settle: timedelta,
        poke_interval: timedelta | float,
        timeout: timedelta | float,
        max_wait: timedelta | float,
        deferrable: bool | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, max_wait=max_wait, **kwargs)
        self.check_at_parse_time()
        if not isinstance(settle, timedelta) or settle < timedelta(0):
            raise InvalidParameterError(f"settle={settle!r} must be a non-negative timedelta.")
        self.openrouter_conn_id = openrouter_conn_id
        self.settle = settle
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        self._hook: OpenRouterHook | None = None
        self._deadline: datetime | None = None
        #: No probe before this instant (the API's ``retry_at``, or the first instant it can show).
        self._not_before: datetime | None = None
        self._probes = 0
        #: Whether the final log line already said what this try spent.
        self._reported = False

    # ------------------------------------------------------------------ what a subclass says
    def check_at_parse_time(self) -> None:
        """Refuse, when the DAG is parsed, what this sensor cannot work with (nothing by default)."""

    def begin(self, context: Context) -> dict[str, Any] | None:
        """Resolve what this run waits for, set the deadline (:meth:`start_deadline`) and log the
        wait; the result at once if there is nothing to wait for."""
        raise NotImplementedError

    def recalled(self) -> dict[str, Any] | None:
        """The result if the memory already shows what is awaited (logged), else None."""
        raise NotImplementedError

    def first_probe_at(self) -> datetime | None:
        """No request can show what is awaited before this instant (None: at once)."""
        raise NotImplementedError

    def unreachable(self, first: datetime) -> str:
        """The timeout message when ``first`` falls after the deadline (no request made)."""
        raise NotImplementedError

    def waiting(self, first: datetime) -> None:
        """Called by each poke that waits for ``first`` without a request (nothing by default)."""

    def probe_once(self, context: Context) -> dict[str, Any] | None:
        """Spend a probe (:meth:`spend_probe`); the result if it shows what is awaited, else None."""
        raise NotImplementedError

    def trigger(self, not_before: datetime | None) -> tuple[ProbeTrigger[Any], str]:
        """The trigger to defer to (no probe before ``not_before``) and what it waits for, for the log."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------ helpers
    @property
    def max_wait_seconds(self) -> float:
        return (
            self.max_wait.total_seconds()
            if self.max_wait is not None
            else self.default_max_wait_seconds
        )

    def _get_hook(self) -> OpenRouterHook:
        if self._hook is None:
            self._hook = OpenRouterHook(self.openrouter_conn_id)
        return self._hook

    def start_deadline(self, context: Context) -> datetime:
        """Set the absolute deadline, ``timeout`` after the first try; return when that began (now,
        or the first reschedule's start in reschedule mode)."""
        started = probe.utcnow()
        if self.reschedule and not self.deferrable:
            started = context["ti"].get_first_reschedule_date(context) or started
        self._deadline = started + timedelta(seconds=self.timeout)
        return started

    def close_hook(self) -> None:
        """Close the hook, logging what this try spent unless that was said already."""
        if self._hook is not None:
            if not self._reported:
                self.log.info(
                    "Spent %d probe(s), %d HTTP request(s) of the account's daily quota in this try.",
                    self._probes,
                    self._hook.request_count,
                )
            self._hook.close()
            self._hook = None

    def spend_probe(self, ask: Callable[[OpenRouterHook], Outcome]) -> Outcome | None:
        """Spend one probe through ``ask(hook)``; None if the API asked to wait (``_not_before``
        is then set) or failed transiently (both logged), else its outcome."""
        hook = self._get_hook()
        self._probes += 1
        self._not_before = None
        outcome = ask(hook)
        if isinstance(outcome, probe.RetryAt):
            self._not_before = outcome.moment
            self.log.warning("Probe %d was refused: %s", self._probes, outcome.reason)
            return None
        if isinstance(outcome, probe.TransientFailure):
            self.log.warning("Probe %d failed (%s); backing off.", self._probes, outcome.reason)
            return None
        return outcome

    # ---------------------------------------------------------------------------- execution
    def execute(self, context: Context) -> Any:
        try:
            known = self.begin(context)
            if known is not None:
                return known
            if not self.deferrable:
                return super().execute(context)
            result = self.recalled()
            if result is None:
                first = self.first_probe_at()
                if first is None or probe.utcnow() >= first:
                    result = self.probe_once(context)
            if result is not None:
                return result
            self._defer()
        finally:
            self.close_hook()

    def _next_probe_at(self, now: datetime) -> datetime | None:
        """When the trigger may probe first: the pending ``retry_at``, else after a backoff if this
        try probed already, else None (as soon as the clock allows)."""
        if self._not_before is None and self._probes:
            return now + timedelta(
                seconds=probe.next_probe_delay(
                    now, self.first_probe_at() or now, self.poke_interval, self.max_wait_seconds
                )
            )
        return self._not_before

    def _defer(self) -> NoReturn:
        assert self._deadline is not None
        now = probe.utcnow()
        trigger, awaited = self.trigger(self._next_probe_at(now))
        self.log.info(
            "Deferring to the triggerer until %s or %s.", awaited, self._deadline.isoformat()
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=max(self._deadline - now, timedelta(0)) + DEFERRAL_GRACE,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check in non-deferrable mode: memory first, then the clock, then (maybe) a probe."""
        result = self.recalled()
        if result is None:
            now = probe.utcnow()
            first = self.first_probe_at()
            assert self._deadline is not None
            if first is not None and first > self._deadline:
                raise AirflowSensorTimeout(self.unreachable(first))
            if first is not None and now < first:
                self._not_before = first
                self.waiting(first)
                return False
            if self._not_before is not None and now < self._not_before:
                return False
            result = self.probe_once(context)
        return False if result is None else PokeReturnValue(True, result)

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        """Wait for the first instant or ``retry_at`` if one is pending, else back off."""
        now = probe.utcnow()
        if self._not_before is not None and self._not_before > now:
            wait = (self._not_before - now).total_seconds()
        else:
            wait = probe.next_probe_delay(
                now, self.first_probe_at() or now, self.poke_interval, self.max_wait_seconds
            )
        return max(0.0, min(wait, self.timeout - run_duration()))

    # ------------------------------------------------------------------------------- resume
    def report_event(self, checked: Mapping[str, Any], what: str) -> None:
        """Log a validated trigger event; raise if it reports a timeout or an error of the ``what``
        probe."""
        from airflow_provider_openrouter.triggers.probe import ERROR, TIMEOUT

        self.log.info(
            "Trigger reported %s: %s. Probes spent: %d (%d HTTP request(s) in the triggerer).",
            checked["status"],
            checked["message"],
            checked["probes"],
            checked["requests"],
        )
        if checked["status"] == TIMEOUT:
            raise AirflowSensorTimeout(f"Sensor timed out: {checked['message']}")
        if checked["status"] == ERROR:
            raise OpenRouterError(f"The {what} probe failed: {checked['message']}")


def invalid_event(trigger: str, why: str) -> AirflowException:
    """The error for an event the sensor cannot trust."""
    return AirflowException(f"Invalid event from {trigger} ({why}); the sensor cannot trust it.")


def check_event(
    event: Any, trigger: str, key: str, wanted: str | None, mismatch: Callable[[Any], str]
) -> dict[str, Any]:
    """What every trigger event must be: a dict with a known ``status``, ``event[key] == wanted``
    (else ``mismatch(event[key])`` says why not), counts and a message.

    Returns ``{"status", "message", "probes", "requests"}``; raises :func:`invalid_event`.
    """
    from airflow_provider_openrouter.triggers.probe import ERROR, SUCCESS, TIMEOUT

    if not isinstance(event, Mapping):
        raise invalid_event(trigger, f"expected a dict, got {type(event).__name__}")
    status = event.get("status")
    if status not in (SUCCESS, TIMEOUT, ERROR):
        raise invalid_event(trigger, f"unknown status {status!r}")
    if event.get(key) != wanted:
        raise invalid_event(trigger, mismatch(event.get(key)))
    probes, requests = event.get("probes"), event.get("requests", 0)
    if (
        not isinstance(probes, int)
        or isinstance(probes, bool)
        or probes < 0
        or not isinstance(requests, int)
    ):
        raise invalid_event(trigger, f"probes={probes!r}, requests={requests!r}")
    message = event.get("message")
    if not isinstance(message, str):
        raise invalid_event(trigger, "no message")
    return {"status": status, "message": message, "probes": probes, "requests": requests}
