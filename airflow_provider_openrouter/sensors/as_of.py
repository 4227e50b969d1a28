"""OpenRouterAsOfSensor: nothing downstream runs until OpenRouter's ``meta.as_of`` proves the day final.

The target is the last UTC day of the run's window: its partition in a partitioned DAG, else its
data interval (the operators' own function,
:func:`~airflow_provider_openrouter.runtime.run_window.run_days`). The day is complete when
``meta.as_of >= (target + 1 day) 00:00 UTC + settle`` and ``meta.end_date >= target``. No
request can prove that earlier, so none is made earlier.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_openrouter.compat import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
)
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    InvalidResponseError,
    OpenRouterError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import as_of_memory, probe
from airflow_provider_openrouter.runtime.run_window import (
    check_partition_schedule,
    is_partitioned_run,
    run_days,
)
from airflow_provider_openrouter.windows.intervals import day_complete_at

# The trigger (triggers.as_of, which loads Airflow's airflow.triggers.base) is imported where the
# sensor defers or reads the trigger's event: a DAG file that uses the sensor does not pay for it.

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

#: Extra time given to Airflow's own deferral timeout, so that the trigger's clearer event wins.
_DEFERRAL_GRACE = timedelta(minutes=5)


class OpenRouterAsOfSensor(BaseSensorOperator):
    """Wait until OpenRouter's datasets are final for the last UTC day of the run's data interval.

    Before the day's completion instant the sensor waits without any request (deferred, or asleep
    / rescheduled in non-deferrable mode). After it, it probes ``rankings-daily`` for that one day,
    backing off between probes (at least ``poke_interval``, at most ``max_wait``). Each probe counts
    against the account's 500-requests/day quota; the log says how many were spent. The highest
    ``as_of`` seen is remembered per connection (Airflow Variable ``openrouter_as_of__<conn_id>``),
    so a day already proven complete costs no request. A successful probe is pushed to XCom
    (key :data:`~airflow_provider_openrouter.runtime.probe.PROBE_XCOM_KEY`) for the following
    ``RankingsDailyOperator`` to reuse.

    :param openrouter_conn_id: the ``openrouter`` connection.
    :param settle: extra wait after the day's end before ``as_of`` counts as proof.
    :param poke_interval: shortest wait between probes (seconds or timedelta).
    :param timeout: give up after this long (measured from the first try; an absolute deadline).
    :param max_wait: longest wait between probes.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).

    Returns (XCom ``return_value``) ``{"target_day", "as_of", "end_date", "probes", "proof"}``
    where ``proof`` is ``"probe"`` or ``"memory"``.
    """

    template_fields = ("openrouter_conn_id",)
    ui_color = "#d7ecf7"

    def __init__(
        self,
        *,
        openrouter_conn_id: str = OpenRouterHook.default_conn_name,
        settle: timedelta = timedelta(0),
        poke_interval: timedelta | float = timedelta(minutes=5),
        timeout: timedelta | float = timedelta(hours=24),
        max_wait: timedelta | float = timedelta(hours=1),
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, max_wait=max_wait, **kwargs)
        check_partition_schedule(self)
        if not isinstance(settle, timedelta) or settle < timedelta(0):
            raise InvalidParameterError(f"settle={settle!r} must be a non-negative timedelta.")
        self.openrouter_conn_id = openrouter_conn_id
        self.settle = settle
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        self._hook: OpenRouterHook | None = None
        self._target: date | None = None
        self._deadline: datetime | None = None
        self._not_before: datetime | None = None
        self._probes = 0
        self._reported = False
        self._narrow = False

    # ------------------------------------------------------------------ helpers
    @property
    def max_wait_seconds(self) -> float:
        return self.max_wait.total_seconds() if self.max_wait is not None else 3600.0

    def target_day(self, context: Context) -> date:
        """The last UTC day of the run's window (its partition, or else its data interval, as the
        operators resolve it); skips the task if the window precedes the dataset."""
        window = run_days(
            context,
            (
                "This DAG run has no data interval and no partition, so there is no day to wait for; trigger it "
                "with a logical date on a timetable with data intervals, or schedule it on a CronPartitionTimetable."
            ),
        )
        if window is None:
            where = (
                f"partition {context.get('partition_key')!r}"
                if is_partitioned_run(context)
                else f"data interval {context.get('data_interval_start')}..{context.get('data_interval_end')}"
            )
            raise AirflowSkipException(
                f"The {where} lies before OpenRouter's first day: nothing to wait for."
            )
        return window.end

    def _get_hook(self) -> OpenRouterHook:
        if self._hook is None:
            self._hook = OpenRouterHook(self.openrouter_conn_id)
        return self._hook

    def _remembered_proof(self, target: date) -> as_of_memory.SeenAsOf | None:
        seen = as_of_memory.recall(self.openrouter_conn_id, self._get_hook().get_conn().base_url)
        return seen if seen is not None and seen.proves(target, self.settle) else None

    def _summary(
        self, target: date, as_of: str | None, end_date: str | None, probes: int, proof: str
    ) -> dict[str, Any]:
        return {
            "target_day": target.isoformat(),
            "as_of": as_of,
            "end_date": end_date,
            "probes": probes,
            "proof": proof,
        }

    def _memory_summary(self, target: date, seen: as_of_memory.SeenAsOf) -> dict[str, Any]:
        self.log.info(
            "%s was already proven complete (as_of %s remembered for connection %r): no request made.",
            target,
            seen.as_of.isoformat(),
            self.openrouter_conn_id,
        )
        return self._summary(target, seen.as_of.isoformat(), seen.end_date.isoformat(), 0, "memory")

    # ---------------------------------------------------------------- execution
    def execute(self, context: Context) -> Any:
        target = self._target = self.target_day(context)
        complete_at = day_complete_at(target, self.settle)
        started = probe.utcnow()
        if self.reschedule and not self.deferrable:
            started = context["ti"].get_first_reschedule_date(context) or started
        self._deadline = started + timedelta(seconds=self.timeout)
        self.log.info(
            "Waiting for OpenRouter to prove %s complete (as_of >= %s, end_date >= %s); deadline %s.",
            target,
            complete_at.isoformat(),
            target,
            self._deadline.isoformat(),
        )
        try:
            if not self.deferrable:
                return super().execute(context)
            seen = self._remembered_proof(target)
            if seen is not None:
                return self._memory_summary(target, seen)
            now = probe.utcnow()
            if now >= complete_at:
                result = self._probe_single_flight(context, target)
                if isinstance(result, as_of_memory.SeenAsOf):
                    return self._memory_summary(target, result)
                if result is not None and result.complete:
                    return self._succeed(context, target, result)
            self._defer(target)
        finally:
            if self._hook is not None:
                if not self._reported:
                    self.log.info(
                        "Spent %d probe(s), %d HTTP request(s) of the account's daily quota in this try.",
                        self._probes,
                        self._hook.request_count,
                    )
                self._hook.close()
                self._hook = None

    def _defer(self, target: date) -> None:
        assert self._deadline is not None
        now = probe.utcnow()
        not_before = self._not_before
        if not_before is None and self._probes:
            not_before = now + timedelta(
                seconds=probe.next_probe_delay(
                    now,
                    day_complete_at(target, self.settle),
                    self.poke_interval,
                    self.max_wait_seconds,
                )
            )
        from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger

        trigger = OpenRouterAsOfTrigger(
            openrouter_conn_id=self.openrouter_conn_id,
            target_day=target.isoformat(),
            deadline=self._deadline,
            settle_seconds=self.settle.total_seconds(),
            poke_interval=self.poke_interval,
            max_wait=self.max_wait_seconds,
            not_before=not_before.isoformat() if not_before else None,
            prior_probes=self._probes,
        )
        self.log.info(
            "Deferring to the triggerer until %s is proven complete or %s.",
            target,
            self._deadline.isoformat(),
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=max(self._deadline - now, timedelta(0)) + _DEFERRAL_GRACE,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check in non-deferrable mode: memory first, then the clock, then (maybe) a probe."""
        target = self._target or self.target_day(context)
        seen = self._remembered_proof(target)
        if seen is not None:
            return PokeReturnValue(True, self._memory_summary(target, seen))
        now = probe.utcnow()
        complete_at = day_complete_at(target, self.settle)
        assert self._deadline is not None
        if complete_at > self._deadline:
            raise AirflowSensorTimeout(
                f"{target} cannot be complete before {complete_at.isoformat()}, after this sensor's deadline "
                f"{self._deadline.isoformat()}; no request was made. Raise timeout or run later."
            )
        if now < complete_at:
            self._not_before = complete_at
            self.log.info(
                "No request can prove %s before %s; waiting without one.",
                target,
                complete_at.isoformat(),
            )
            return False
        if self._not_before is not None and now < self._not_before:
            return False
        result = self._probe_single_flight(context, target)
        if isinstance(result, as_of_memory.SeenAsOf):
            return PokeReturnValue(True, self._memory_summary(target, result))
        if result is not None and result.complete:
            return PokeReturnValue(True, self._succeed(context, target, result))
        if self._not_before is not None and self._not_before > self._deadline:
            raise AirflowSensorTimeout(
                f"OpenRouter accepts requests again at {self._not_before.isoformat()}, after this sensor's deadline "
                f"{self._deadline.isoformat()}."
            )
        return False

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        """Wait for the completion instant or ``retry_at`` if one is pending, else back off."""
        now = probe.utcnow()
        if self._not_before is not None and self._not_before > now:
            wait = (self._not_before - now).total_seconds()
        else:
            complete_at = day_complete_at(self._target or now.date(), self.settle)
            wait = probe.next_probe_delay(
                now, complete_at, self.poke_interval, self.max_wait_seconds
            )
        remaining = self.timeout - run_duration()
        return max(0.0, min(wait, remaining))

    def _probe_single_flight(
        self, context: Context, target: date
    ) -> probe.ProbeResult | as_of_memory.SeenAsOf | None:
        """Probe, one sensor of the connection at a time: concurrent sensors (a backfill's first runs)
        wait for the lease holder's probe, whose answer usually proves their day too (the memory);
        they probe themselves only if it did not, or if the holder is gone."""
        token = as_of_memory.try_probe_lease(self.openrouter_conn_id)
        give_up = time.monotonic() + as_of_memory.LEASE_SECONDS
        while token is None:
            seen = self._remembered_proof(target)
            if seen is not None:
                return seen
            if time.monotonic() > give_up:
                break  # the holder is stuck or gone: probe anyway
            time.sleep(1.0)
            token = as_of_memory.try_probe_lease(self.openrouter_conn_id)
        try:
            if token is not None:
                seen = self._remembered_proof(target)  # proven while this sensor took the lease
                if seen is not None:
                    return seen
            return self._probe(context, target)
        finally:
            if token is not None:
                as_of_memory.release_probe_lease(self.openrouter_conn_id, token)

    def _probe(self, context: Context, target: date) -> probe.ProbeResult | None:
        """Spend one probe; ``None`` if the API asked to wait (``retry_at`` is then set) or failed transiently."""
        hook = self._get_hook()
        self._probes += 1
        self._not_before = None
        # the newest day the clock allows, unless a probe of it was refused (the API lags far behind)
        latest = None if self._narrow else (probe.utcnow() - self.settle).date() - timedelta(days=1)
        outcome = hook.probe_day(target, self.settle, latest=latest)
        if isinstance(outcome, probe.RetryAt):
            self._not_before = outcome.moment
            self.log.warning("Probe %d was refused: %s", self._probes, outcome.reason)
            return None
        if isinstance(outcome, probe.TransientFailure):
            self.log.warning("Probe %d failed (%s); backing off.", self._probes, outcome.reason)
            return None
        if isinstance(outcome, probe.NotServedYet):
            if probe.probe_window(target, latest) != probe.probe_window(target):
                self._narrow = (
                    True  # the newest days are not served: ask for the target's own days next
                )
            self.log.info(
                "Probe %d: %s (%s).", self._probes, outcome.result.describe(), outcome.api_message
            )
            return outcome.result
        result = outcome.result
        self.log.info("Probe %d: %s.", self._probes, result.describe())
        if result.as_of is not None and result.end_date is not None:
            as_of_memory.remember(
                self.openrouter_conn_id,
                as_of_memory.SeenAsOf(result.as_of, result.end_date, hook.get_conn().base_url),
            )
        return result

    def _succeed(self, context: Context, target: date, result: probe.ProbeResult) -> dict[str, Any]:
        hook = self._get_hook()
        record = probe.probe_record(
            result,
            as_of_memory.public_base_url(hook.get_conn().base_url),
            self.openrouter_conn_id,
            probe.utcnow(),
        )
        context["ti"].xcom_push(key=probe.PROBE_XCOM_KEY, value=record)
        self.log.info(
            "%s is complete. Spent %d probe(s), %d HTTP request(s) of the account's daily quota.",
            target,
            self._probes,
            hook.request_count,
        )
        self._reported = True
        assert result.as_of is not None and result.end_date is not None
        return self._summary(
            target, result.as_of.isoformat(), result.end_date.isoformat(), self._probes, "probe"
        )

    # ------------------------------------------------------------------ resume
    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger: validate its event, then succeed, time out or fail."""
        from airflow_provider_openrouter.triggers.as_of import ERROR, TIMEOUT

        target = self.target_day(context)
        checked = validate_event(event, target, self.settle)
        base_url = checked.get("base_url")
        if checked["as_of"] and checked["end_date"] and base_url:
            as_of_memory.remember(
                self.openrouter_conn_id,
                as_of_memory.SeenAsOf(
                    datetime.fromisoformat(checked["as_of"]),
                    date.fromisoformat(checked["end_date"]),
                    base_url,
                ),
            )
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
            raise OpenRouterError(f"The as_of probe failed: {checked['message']}")
        context["ti"].xcom_push(key=probe.PROBE_XCOM_KEY, value=checked["probe"])
        return self._summary(
            target, checked["as_of"], checked["end_date"], checked["probes"], "probe"
        )


def validate_event(event: Any, target: date, settle: timedelta = timedelta(0)) -> dict[str, Any]:
    """Check a trigger event before acting on it; raise :class:`AirflowException` saying what is wrong.

    A ``success`` must carry a probe record whose payload, re-validated here, proves ``target``
    complete; an event for another day is rejected.
    """
    from airflow_provider_openrouter.triggers.as_of import ERROR, SUCCESS, TIMEOUT

    def bad(why: str) -> AirflowException:
        return AirflowException(
            f"Invalid event from OpenRouterAsOfTrigger ({why}); the sensor cannot trust it."
        )

    if not isinstance(event, Mapping):
        raise bad(f"expected a dict, got {type(event).__name__}")
    status = event.get("status")
    if status not in (SUCCESS, TIMEOUT, ERROR):
        raise bad(f"unknown status {status!r}")
    if event.get("target_day") != target.isoformat():
        raise bad(f"it is for day {event.get('target_day')!r}, this run waits for {target}")
    probes, requests = event.get("probes"), event.get("requests", 0)
    if (
        not isinstance(probes, int)
        or isinstance(probes, bool)
        or probes < 0
        or not isinstance(requests, int)
    ):
        raise bad(f"probes={probes!r}, requests={requests!r}")
    message = event.get("message")
    if not isinstance(message, str):
        raise bad("no message")
    checked = {
        "status": status,
        "message": message,
        "probes": probes,
        "requests": requests,
        "as_of": None,
        "end_date": None,
        "base_url": event.get("base_url"),
        "probe": None,
    }
    try:
        if event.get("as_of") is not None:
            as_of = datetime.fromisoformat(str(event["as_of"]))
            if as_of.tzinfo is None:
                raise ValueError("naive as_of")
            checked["as_of"] = as_of.isoformat()
        if event.get("end_date") is not None:
            checked["end_date"] = date.fromisoformat(str(event["end_date"])).isoformat()
    except ValueError as exc:
        raise bad(f"unreadable as_of/end_date: {exc}") from None
    if status != SUCCESS:
        return checked
    record = event.get("probe")
    if not isinstance(record, Mapping) or not isinstance(record.get("payload"), Mapping):
        raise bad("a success without its probe")
    try:
        result = probe.evaluate_probe(record["payload"], target, settle)
    except InvalidResponseError as exc:
        raise bad(f"its probe does not validate: {exc}") from None
    window = probe.probe_window(target)
    if not result.complete or record.get("window") != {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
    }:
        raise bad(f"its probe does not prove {target} complete ({result.describe()})")
    assert result.as_of is not None and result.end_date is not None
    checked.update(
        as_of=result.as_of.isoformat(), end_date=result.end_date.isoformat(), probe=dict(record)
    )
    return checked
