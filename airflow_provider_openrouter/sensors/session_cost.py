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

from airflow_provider_openrouter.api.datasets import session_cost
from airflow_provider_openrouter.compat import AirflowException
from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.runtime import probe, session_cost_memory
from airflow_provider_openrouter.sensors.probe import (
    OpenRouterProbeSensor,
    check_event,
    invalid_event,
)
from airflow_provider_openrouter.windows.intervals import ONE_DAY, day_complete_at

# The trigger (triggers.session_cost, which loads Airflow's airflow.triggers.base) is imported where
# the sensor defers or reads the trigger's event: a DAG file that uses the sensor does not pay for it.

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from airflow_provider_openrouter.triggers.session_cost import OpenRouterSessionCostTrigger


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


class OpenRouterSessionCostSensor(OpenRouterProbeSensor):
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

    ui_color = "#e3f2e1"
    default_max_wait_seconds = 6 * 3600.0

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
        super().__init__(
            openrouter_conn_id=openrouter_conn_id,
            settle=settle,
            poke_interval=poke_interval,
            timeout=timeout,
            max_wait=max_wait,
            deferrable=deferrable,
            **kwargs,
        )
        #: ``(target, after, not_before)`` of :func:`due` for this run.
        self._plan: tuple[date | None, date | None, datetime | None] = (None, None, None)

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
    def begin(self, context: Context) -> dict[str, Any] | None:
        started = self.start_deadline(context)
        assert self._deadline is not None
        target, after, not_before = self._plan = self._plan_for(context)
        known = self.recalled()
        if known is not None:
            return known
        self.log.info(
            "Waiting for %s; no request before %s; deadline %s.",
            f"the session-cost snapshot ending {target} (or any ending after {after})"
            if target
            else "a published session-cost snapshot",
            (not_before or started).isoformat(),
            self._deadline.isoformat(),
        )
        return None

    def recalled(self) -> dict[str, Any] | None:
        target, after, _ = self._plan
        if target is None and after is not None:
            return self._from_memory(after)
        return None

    def first_probe_at(self) -> datetime | None:
        return self._plan[2]

    def unreachable(self, first: datetime) -> str:
        assert self._deadline is not None
        return (
            f"The session-cost snapshot ending {self._plan[0]} cannot exist before {first.isoformat()}, after this "
            f"sensor's deadline {self._deadline.isoformat()}; no request was made. Raise timeout or run later."
        )

    def probe_once(self, context: Context) -> dict[str, Any] | None:
        after = self._plan[1]
        meta = self._probe()
        if meta is not None and session_cost.is_newer(meta, after):
            return self._succeed(after, meta)
        return None

    def trigger(self, not_before: datetime | None) -> tuple[OpenRouterSessionCostTrigger, str]:
        from airflow_provider_openrouter.triggers.session_cost import (
            OpenRouterSessionCostTrigger,
        )

        assert self._deadline is not None
        _, after, first_possible = self._plan
        first = not_before or first_possible or probe.utcnow()
        trigger = OpenRouterSessionCostTrigger(
            openrouter_conn_id=self.openrouter_conn_id,
            after=after.isoformat() if after else None,
            deadline=self._deadline,
            not_before=max(first, first_possible or first),
            poke_interval=self.poke_interval,
            max_wait=self.max_wait_seconds,
            prior_probes=self._probes,
        )
        return trigger, "a new snapshot is published"

    def _probe(self) -> session_cost.SessionCostMeta | None:
        """Spend one probe; None if the API asked to wait (``_not_before`` set) or failed transiently."""
        meta = self.spend_probe(lambda hook: hook.probe_session_cost())
        if meta is None or isinstance(meta, (probe.RetryAt, probe.TransientFailure)):
            return None
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
        self._plan = self._plan_for(context)
        known = self.recalled()  # another task saw the snapshot meanwhile: trust the memory
        if known is not None:
            self.close_hook()
            return known
        after = self._plan[1]
        checked = validate_event(event, after)
        self.close_hook()
        meta = checked["meta"]
        if meta is not None and meta.published and checked["base_url"]:
            seen = session_cost_memory.from_meta(meta, checked["base_url"])
            if seen is not None:
                session_cost_memory.remember(self.openrouter_conn_id, seen)
        self._probes = checked["probes"]
        self.report_event(checked, "session-cost")
        return self._summary(after, meta.raw, "probe")


def validate_event(event: Any, after: date | None) -> dict[str, Any]:
    """Check a trigger event before acting on it; raise :class:`AirflowException` saying what is wrong.

    A ``success`` must carry a ``meta`` that re-validates and shows a snapshot ending after ``after``;
    an event waiting for another snapshot is rejected.
    """
    from airflow_provider_openrouter.triggers.probe import SUCCESS

    def bad(why: str) -> AirflowException:
        return invalid_event("OpenRouterSessionCostTrigger", why)

    wanted = after.isoformat() if after else None
    checked = check_event(
        event,
        "OpenRouterSessionCostTrigger",
        "after",
        wanted,
        lambda got: (
            f"it waited for a snapshot after {got!r}, this run waits for one after {wanted!r}"
        ),
    )
    meta = None
    if event.get("meta") is not None:
        if not isinstance(event["meta"], Mapping):
            raise bad("meta is not an object")
        try:
            meta = session_cost.parse_meta(event["meta"])
        except InvalidResponseError as exc:
            raise bad(f"its meta does not validate: {exc}") from None
    if checked["status"] == SUCCESS and (meta is None or not session_cost.is_newer(meta, after)):
        raise bad(
            f"a success without a snapshot ending after {wanted} ({meta.describe() if meta else 'no meta'})"
        )
    base_url = event.get("base_url")
    checked.update(meta=meta, base_url=base_url if isinstance(base_url, str) else None)
    return checked
