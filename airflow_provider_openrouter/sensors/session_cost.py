"""OpenRouterSessionCostSensor: wait for the weekly session-cost snapshot a run is due, without spending quota.

OpenRouter refreshes the session-cost snapshot weekly: once a snapshot ending ``S`` was seen, the
next ends ``S + 7 days`` and cannot exist before that day is over. The sensor remembers the newest
snapshot seen per connection (:mod:`airflow_provider_openrouter.runtime.session_cost_memory`, an
Airflow Variable) and computes, for the run's instant ``E`` (its data interval's end, else its
logical date, else now), the newest weekly window end due by then:
``T = S + 7k``, the latest with ``(T + 1 day) 00:00 UTC + settle <= E``.

* ``T == S``: the remembered snapshot is the one due: success with no request.
* otherwise: no request before ``(T + 1 day) 00:00 UTC + settle``; then one-cell probes, backing
  off, until a snapshot ending after ``T - 7 days`` is published (deferred in the triggerer when
  ``deferrable``).
* nothing remembered: probe at once; any published snapshot succeeds.

The operator that follows fetches whatever snapshot is current; the snapshot decides its partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_openrouter.api.datasets import session_cost
from airflow_provider_openrouter.compat import AirflowException, AirflowSensorTimeout, conf
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    InvalidResponseError,
    OpenRouterError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe, session_cost_memory
from airflow_provider_openrouter.windows.intervals import ONE_DAY, day_complete_at

# The trigger (triggers.session_cost, which loads Airflow's airflow.triggers.base) is imported where
# the sensor defers or reads the trigger's event: a DAG file that uses the sensor does not pay for it.

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context


#: Extra time given to Airflow's own deferral timeout, so that the trigger's clearer event wins.
_DEFERRAL_GRACE = timedelta(minutes=5)


def run_instant(context: Context) -> datetime:
    """The instant a run stands for: its data interval's end, else its logical date, else now."""
    for name in ("data_interval_end", "logical_date"):
        value = context.get(name)
        if isinstance(value, datetime):
            return probe.utcnow() if value.tzinfo is None else value
    return probe.utcnow()


def due(
    seen: date | None, at: datetime, settle: timedelta
) -> tuple[date | None, date | None, datetime | None]:
    """``(target, after, not_before)`` for a run at ``at``, given the newest window end seen.

    ``target`` None means the remembered snapshot is the one due (nothing to wait for);
    ``after`` None means any published snapshot will do (nothing remembered).
    """
    if seen is None:
        return None, None, None
    latest_complete = (
        at - settle
    ).date() - ONE_DAY  # the last day D with day_complete_at(D, settle) <= at
    target = session_cost.due_snapshot_end(seen, latest_complete)
    if target == seen:
        return None, seen, None
    after = target - session_cost.SNAPSHOT_PERIOD
    return target, after, day_complete_at(target, settle)


class OpenRouterSessionCostSensor(BaseSensorOperator):
    """Wait until OpenRouter publishes the weekly session-cost snapshot due for this run.

    Costs nothing while the remembered snapshot is the one due, and nothing before the awaited
    snapshot's window has ended (plus ``settle``); after that, one-cell probes (one request each)
    back off from ``poke_interval`` to ``max_wait``. The log says how many requests were spent.

    :param openrouter_conn_id: the ``openrouter`` connection.
    :param settle: extra wait after the awaited window's last day before the first probe (OpenRouter
        has published about two hours after; default 0).
    :param poke_interval: shortest wait between probes (seconds or timedelta; default 30 minutes).
    :param timeout: give up after this long (an absolute deadline from the first try; default 3 days).
    :param max_wait: longest wait between probes (default 6 hours).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).

    Returns (XCom) ``{"after", "window_end_date", "window_days", "as_of", "probes", "proof"}``, where
    ``proof`` is ``"memory"`` or ``"probe"``.
    """

    template_fields = ("openrouter_conn_id",)
    ui_color = "#e3f2e1"

    def __init__(
        self,
        *,
        openrouter_conn_id: str = OpenRouterHook.default_conn_name,
        settle: timedelta = timedelta(0),
        poke_interval: timedelta | float = timedelta(minutes=30),
        timeout: timedelta | float = timedelta(days=3),
        max_wait: timedelta | float = timedelta(hours=6),
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, max_wait=max_wait, **kwargs)
        if not isinstance(settle, timedelta) or settle < timedelta(0):
            raise InvalidParameterError(f"settle={settle!r} must be a non-negative timedelta.")
        self.openrouter_conn_id = openrouter_conn_id
        self.settle = settle
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        self._hook: OpenRouterHook | None = None
        self._deadline: datetime | None = None
        self._plan: tuple[date | None, date | None, datetime | None] | None = None
        self._retry_at: datetime | None = None
        self._probes = 0

    @property
    def max_wait_seconds(self) -> float:
        return self.max_wait.total_seconds() if self.max_wait is not None else 6 * 3600.0

    def _get_hook(self) -> OpenRouterHook:
        if self._hook is None:
            self._hook = OpenRouterHook(self.openrouter_conn_id)
        return self._hook

    def _base_url(self) -> str:
        return self._get_hook().get_conn().base_url

    def _plan_for(self, context: Context) -> tuple[date | None, date | None, datetime | None]:
        seen = session_cost_memory.recall(self.openrouter_conn_id, self._base_url())
        return due(seen.window_end_date if seen else None, run_instant(context), self.settle)

    def _summary(
        self, after: date | None, meta: Mapping[str, Any] | None, proof: str
    ) -> dict[str, Any]:
        meta = meta or {}
        return {
            "after": after.isoformat() if after else None,
            "window_end_date": meta.get("window_end_date"),
            "window_days": meta.get("window_days"),
            "as_of": meta.get("as_of"),
            "probes": self._probes,
            "proof": proof,
        }

    def _from_memory(self, after: date | None) -> dict[str, Any]:
        seen = session_cost_memory.recall(self.openrouter_conn_id, self._base_url())
        assert seen is not None
        self.log.info(
            "The session-cost snapshot ending %s (remembered for connection %r) is the newest one due for this run: "
            "no request made.",
            seen.window_end_date,
            self.openrouter_conn_id,
        )
        return self._summary(
            after, {k: v for k, v in seen.to_json().items() if k != "base_url"}, "memory"
        )

    # ---------------------------------------------------------------- execution
    def execute(self, context: Context) -> Any:
        started = probe.utcnow()
        if self.reschedule and not self.deferrable:
            started = context["ti"].get_first_reschedule_date(context) or started
        self._deadline = started + timedelta(seconds=self.timeout)
        target, after, not_before = self._plan = self._plan_for(context)
        if target is None and after is not None:
            return self._finish(self._from_memory(after))
        self.log.info(
            "Waiting for %s; no request before %s; deadline %s.",
            f"the session-cost snapshot ending {target} (or any ending after {after})"
            if target
            else "a published session-cost snapshot",
            (not_before or started).isoformat(),
            self._deadline.isoformat(),
        )
        try:
            if not self.deferrable:
                return super().execute(context)
            if not_before is None or probe.utcnow() >= not_before:
                meta = self._probe(after)
                if meta is not None and session_cost.is_newer(meta, after):
                    return self._succeed(after, meta)
            self._defer(after, not_before)
        finally:
            self._finish(None)

    def _finish(self, result: Any) -> Any:
        if self._hook is not None:
            self.log.info(
                "Spent %d probe(s), %d HTTP request(s) of the account's daily quota in this try.",
                self._probes,
                self._hook.request_count,
            )
            self._hook.close()
            self._hook = None
        return result

    def _defer(self, after: date | None, not_before: datetime | None) -> None:
        assert self._deadline is not None
        now = probe.utcnow()
        first = self._retry_at or not_before or now
        if self._probes and self._retry_at is None:
            first = now + timedelta(
                seconds=probe.next_probe_delay(
                    now, not_before or now, self.poke_interval, self.max_wait_seconds
                )
            )
        from airflow_provider_openrouter.triggers.session_cost import (
            OpenRouterSessionCostTrigger,
        )

        trigger = OpenRouterSessionCostTrigger(
            openrouter_conn_id=self.openrouter_conn_id,
            after=after.isoformat() if after else None,
            deadline=self._deadline,
            not_before=max(first, not_before or first),
            poke_interval=self.poke_interval,
            max_wait=self.max_wait_seconds,
            prior_probes=self._probes,
        )
        self.log.info(
            "Deferring to the triggerer until a new snapshot is published or %s.",
            self._deadline.isoformat(),
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=max(self._deadline - now, timedelta(0)) + _DEFERRAL_GRACE,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check in non-deferrable mode: memory, then the clock, then (maybe) one probe."""
        target, after, not_before = self._plan or self._plan_for(context)
        if target is None and after is not None:
            return PokeReturnValue(True, self._from_memory(after))
        now = probe.utcnow()
        assert self._deadline is not None
        if not_before is not None and not_before > self._deadline:
            raise AirflowSensorTimeout(
                f"The session-cost snapshot ending {target} cannot exist before {not_before.isoformat()}, after this "
                f"sensor's deadline {self._deadline.isoformat()}; no request was made. Raise timeout or run later."
            )
        if (not_before is not None and now < not_before) or (
            self._retry_at is not None and now < self._retry_at
        ):
            return False
        meta = self._probe(after)
        if meta is not None and session_cost.is_newer(meta, after):
            return PokeReturnValue(True, self._succeed(after, meta))
        return False

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        now = probe.utcnow()
        not_before = self._plan[2] if self._plan else None
        pending = self._retry_at or (not_before if not_before and not_before > now else None)
        if pending is not None and pending > now:
            wait = (pending - now).total_seconds()
        else:
            wait = probe.next_probe_delay(
                now, not_before or now, self.poke_interval, self.max_wait_seconds
            )
        return max(0.0, min(wait, self.timeout - run_duration()))

    def _probe(self, after: date | None) -> session_cost.SessionCostMeta | None:
        """Spend one probe; None if the API asked to wait (``_retry_at`` set) or failed transiently."""
        hook = self._get_hook()
        self._probes += 1
        self._retry_at = None
        outcome = hook.probe_session_cost()
        if isinstance(outcome, probe.RetryAt):
            self._retry_at = outcome.moment
            self.log.warning("Probe %d was refused: %s", self._probes, outcome.reason)
            return None
        if isinstance(outcome, probe.TransientFailure):
            self.log.warning("Probe %d failed (%s); backing off.", self._probes, outcome.reason)
            return None
        meta = outcome
        self.log.info("Probe %d: %s.", self._probes, meta.describe())
        seen = session_cost_memory.from_meta(meta, self._base_url())
        if seen is not None:
            session_cost_memory.remember(self.openrouter_conn_id, seen)
        return meta

    def _succeed(self, after: date | None, meta: session_cost.SessionCostMeta) -> dict[str, Any]:
        self.log.info(
            "Found the session-cost snapshot due: %s. Spent %d probe(s).",
            meta.describe(),
            self._probes,
        )
        return self._summary(after, meta.raw, "probe")

    # ------------------------------------------------------------------ resume
    def execute_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the trigger: validate its event, then succeed, time out or fail."""
        from airflow_provider_openrouter.triggers.session_cost import ERROR, TIMEOUT

        target, after, _ = self._plan_for(context)
        if (
            target is None and after is not None
        ):  # another task saw the snapshot meanwhile: trust the memory
            return self._finish(self._from_memory(after))
        checked = validate_event(event, after)
        self._finish(None)
        meta = checked["meta"]
        if meta is not None and meta.published and checked["base_url"]:
            seen = session_cost_memory.from_meta(meta, checked["base_url"])
            if seen is not None:
                session_cost_memory.remember(self.openrouter_conn_id, seen)
        self._probes = checked["probes"]
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
            raise OpenRouterError(f"The session-cost probe failed: {checked['message']}")
        return self._summary(after, meta.raw, "probe")


def validate_event(event: Any, after: date | None) -> dict[str, Any]:
    """Check a trigger event before acting on it; raise :class:`AirflowException` saying what is wrong.

    A ``success`` must carry a ``meta`` that re-validates and shows a snapshot ending after ``after``;
    an event waiting for another snapshot is rejected.
    """
    from airflow_provider_openrouter.triggers.session_cost import ERROR, SUCCESS, TIMEOUT

    def bad(why: str) -> AirflowException:
        return AirflowException(
            f"Invalid event from OpenRouterSessionCostTrigger ({why}); the sensor cannot trust it."
        )

    if not isinstance(event, Mapping):
        raise bad(f"expected a dict, got {type(event).__name__}")
    status = event.get("status")
    if status not in (SUCCESS, TIMEOUT, ERROR):
        raise bad(f"unknown status {status!r}")
    wanted = after.isoformat() if after else None
    if event.get("after") != wanted:
        raise bad(
            f"it waited for a snapshot after {event.get('after')!r}, this run waits for one after {wanted!r}"
        )
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
    meta = None
    if event.get("meta") is not None:
        if not isinstance(event["meta"], Mapping):
            raise bad("meta is not an object")
        try:
            meta = session_cost.parse_meta(event["meta"])
        except InvalidResponseError as exc:
            raise bad(f"its meta does not validate: {exc}") from None
    if status == SUCCESS and (meta is None or not session_cost.is_newer(meta, after)):
        raise bad(
            f"a success without a snapshot ending after {wanted} ({meta.describe() if meta else 'no meta'})"
        )
    base_url = event.get("base_url")
    return {
        "status": status,
        "message": message,
        "probes": probes,
        "requests": requests,
        "meta": meta,
        "base_url": base_url if isinstance(base_url, str) else None,
    }
