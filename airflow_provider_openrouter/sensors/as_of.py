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

from airflow.sdk import PokeReturnValue

from airflow_provider_openrouter.compat import (
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import as_of_memory, probe
from airflow_provider_openrouter.runtime.run_window import (
    check_partition_schedule,
    is_partitioned_run,
    run_days,
)
from airflow_provider_openrouter.sensors.probe import (
    OpenRouterProbeSensor,
    check_event,
    invalid_event,
)
from airflow_provider_openrouter.windows.intervals import day_complete_at

# The trigger (triggers.as_of, which loads Airflow's airflow.triggers.base) is imported where the
# sensor defers or reads the trigger's event: a DAG file that uses the sensor does not pay for it.

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger


class OpenRouterAsOfSensor(OpenRouterProbeSensor):
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
        super().__init__(
            openrouter_conn_id=openrouter_conn_id,
            settle=settle,
            poke_interval=poke_interval,
            timeout=timeout,
            max_wait=max_wait,
            deferrable=deferrable,
            **kwargs,
        )
        self._target: date | None = None
        self._narrow = False

    def check_at_parse_time(self) -> None:
        check_partition_schedule(self)

    # ------------------------------------------------------------------ helpers
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
    def begin(self, context: Context) -> dict[str, Any] | None:
        target = self._target = self.target_day(context)
        self.start_deadline(context)
        assert self._deadline is not None
        self.log.info(
            "Waiting for OpenRouter to prove %s complete (as_of >= %s, end_date >= %s); deadline %s.",
            target,
            day_complete_at(target, self.settle).isoformat(),
            target,
            self._deadline.isoformat(),
        )
        return None

    def recalled(self) -> dict[str, Any] | None:
        assert self._target is not None
        seen = self._remembered_proof(self._target)
        return None if seen is None else self._memory_summary(self._target, seen)

    def first_probe_at(self) -> datetime:
        assert self._target is not None
        return day_complete_at(self._target, self.settle)

    def unreachable(self, first: datetime) -> str:
        assert self._deadline is not None
        return (
            f"{self._target} cannot be complete before {first.isoformat()}, after this sensor's deadline "
            f"{self._deadline.isoformat()}; no request was made. Raise timeout or run later."
        )

    def waiting(self, first: datetime) -> None:
        self.log.info(
            "No request can prove %s before %s; waiting without one.",
            self._target,
            first.isoformat(),
        )

    def probe_once(self, context: Context) -> dict[str, Any] | None:
        assert self._target is not None
        result = self._probe_single_flight(context, self._target)
        if isinstance(result, as_of_memory.SeenAsOf):
            return self._memory_summary(self._target, result)
        if result is not None and result.complete:
            return self._succeed(context, self._target, result)
        return None

    def trigger(self, not_before: datetime | None) -> tuple[OpenRouterAsOfTrigger, str]:
        from airflow_provider_openrouter.triggers.as_of import OpenRouterAsOfTrigger

        assert self._target is not None and self._deadline is not None
        trigger = OpenRouterAsOfTrigger(
            openrouter_conn_id=self.openrouter_conn_id,
            target_day=self._target.isoformat(),
            deadline=self._deadline,
            settle_seconds=self.settle.total_seconds(),
            poke_interval=self.poke_interval,
            max_wait=self.max_wait_seconds,
            not_before=not_before.isoformat() if not_before else None,
            prior_probes=self._probes,
        )
        return trigger, f"{self._target} is proven complete"

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check in non-deferrable mode: memory first, then the clock, then (maybe) a probe;
        a ``retry_at`` after the deadline ends the wait at once."""
        done = super().poke(context)
        assert self._deadline is not None
        if not done and self._not_before is not None and self._not_before > self._deadline:
            raise AirflowSensorTimeout(
                f"OpenRouter accepts requests again at {self._not_before.isoformat()}, after this sensor's deadline "
                f"{self._deadline.isoformat()}."
            )
        return done

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
        # the newest day the clock allows, unless a probe of it was refused (the API lags far behind)
        latest = None if self._narrow else (probe.utcnow() - self.settle).date() - timedelta(days=1)
        outcome = self.spend_probe(lambda hook: hook.probe_day(target, self.settle, latest=latest))
        if outcome is None or isinstance(outcome, (probe.RetryAt, probe.TransientFailure)):
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
                as_of_memory.SeenAsOf(
                    result.as_of, result.end_date, self._get_hook().get_conn().base_url
                ),
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
        self.report_event(checked, "as_of")
        context["ti"].xcom_push(key=probe.PROBE_XCOM_KEY, value=checked["probe"])
        return self._summary(
            target, checked["as_of"], checked["end_date"], checked["probes"], "probe"
        )


def validate_event(event: Any, target: date, settle: timedelta = timedelta(0)) -> dict[str, Any]:
    """Check a trigger event before acting on it; raise :class:`AirflowException` saying what is wrong.

    A ``success`` must carry a probe record whose payload, re-validated here, proves ``target``
    complete; an event for another day is rejected.
    """
    from airflow_provider_openrouter.triggers.probe import SUCCESS

    def bad(why: str) -> AirflowException:
        return invalid_event("OpenRouterAsOfTrigger", why)

    checked = check_event(
        event,
        "OpenRouterAsOfTrigger",
        "target_day",
        target.isoformat(),
        lambda day: f"it is for day {day!r}, this run waits for {target}",
    )
    checked.update(as_of=None, end_date=None, base_url=event.get("base_url"), probe=None)
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
    if checked["status"] != SUCCESS:
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
