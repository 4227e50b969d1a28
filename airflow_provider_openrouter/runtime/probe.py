"""The as_of probe: one ``rankings-daily`` request for one UTC day, and what its answer proves.

Pure functions shared by :class:`~airflow_provider_openrouter.sensors.as_of.OpenRouterAsOfSensor`
(sync probes), :class:`~airflow_provider_openrouter.triggers.as_of.OpenRouterAsOfTrigger` (async
probes) and :class:`~airflow_provider_openrouter.operators.rankings.RankingsDailyOperator`, which
reuses a successful probe instead of asking again (:func:`reusable_probe`).

A day ``D`` is complete when ``meta.as_of >= day_complete_at(D, settle)`` and ``meta.end_date >= D``.
Before ``day_complete_at(D, settle)`` no answer can prove it, so no request is made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.api.answers import parse_meta
from airflow_provider_openrouter.api.datasets.rankings_daily import (
    RankingsDaily,
    parse_rankings_daily,
)
from airflow_provider_openrouter.exceptions import BadRequestError, InvalidResponseError
from airflow_provider_openrouter.windows.intervals import (
    DATASET_FLOOR,
    MAX_WINDOW_DAYS,
    Window,
    day_complete_at,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

#: XCom key under which the sensor pushes its successful probe (see :func:`probe_record`).
PROBE_XCOM_KEY = "openrouter_as_of_probe"
#: Days before the target that a probe asks for too (the rankings operator's default lookback:
#: OpenRouter restates recent days, see ``RankingsDailyOperator(lookback_days=...)``).
PROBE_LOOKBACK_DAYS = 7
#: A probe older than this is not reused: the operator asks again (the day may have been restated).
PROBE_MAX_AGE = timedelta(minutes=15)


def utcnow() -> datetime:
    """The current time in UTC (the one clock of the sensor and trigger; patched in tests)."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe answer says about ``target``.

    ``rankings`` is the validated answer when it proves the day complete, else ``None``.
    ``as_of``/``end_date`` are ``None`` when the API refused the window (the day is not served yet).
    """

    target: date
    complete: bool
    as_of: datetime | None
    end_date: date | None
    rankings: RankingsDaily | None = None

    def describe(self) -> str:
        if self.as_of is None:
            return f"{self.target} is not served yet (the API refused the probe's window)"
        state = "complete" if self.complete else "not complete yet"
        return f"{self.target} is {state}: as_of {self.as_of.isoformat()}, end_date {self.end_date}"


@dataclass(frozen=True)
class Answered:
    """The probe got an answer; ``result.complete`` says whether it proves the day final."""

    result: ProbeResult


@dataclass(frozen=True)
class NotServedYet:
    """The API refused the probe's window: the day is not in the dataset yet (``api_message`` says so)."""

    result: ProbeResult
    api_message: str | None


@dataclass(frozen=True)
class RetryAt:
    """The API refused the probe for now (rate limit, daily quota); ``moment`` is when it accepts
    requests again, when it said so."""

    moment: datetime | None
    reason: str


@dataclass(frozen=True)
class TransientFailure:
    """5xx answers, timeouts or dropped connections outlasted the retry policy; probe again later."""

    reason: str


#: What :meth:`OpenRouterHook.probe_day <airflow_provider_openrouter.hooks.openrouter.OpenRouterHook.probe_day>`
#: returns; any other failure (a rejected key, an invalid answer, another 400) is raised.
ProbeOutcome = Answered | NotServedYet | RetryAt | TransientFailure


def probe_window(target: date, latest: date | None = None) -> Window:
    """The window the probe asks for: ``target`` and the :data:`PROBE_LOOKBACK_DAYS` days before it.

    One request either way (a window costs the same as one day), and the answer then also holds
    the days a :class:`~airflow_provider_openrouter.operators.rankings.RankingsDailyOperator` re-verifies
    with its default ``lookback_days``, so a steady daily run spends one request in all.

    ``latest`` is the newest day the clock says may be complete. For an older ``target`` (a
    backfill), the probe's window reaches on towards ``latest`` (366 days at most, still one
    request): the API clamps the end to its last complete day, so one answer proves every day up
    to it, for every other sensor of the backfill too (the ``as_of`` memory)."""
    start = max(target - timedelta(days=PROBE_LOOKBACK_DAYS), DATASET_FLOOR)
    if latest is not None and target < latest:
        return Window(start, min(latest, start + timedelta(days=MAX_WINDOW_DAYS - 1)))
    return Window(start, target)


def evaluate_probe(
    payload: Any, target: date, settle: timedelta = timedelta(0), asked: Window | None = None
) -> ProbeResult:
    """Judge a ``rankings-daily`` answer for ``asked`` (default ``probe_window(target)``).

    Raises :class:`InvalidResponseError` if the answer is malformed, so a broken API never
    counts as "complete". Of a window wider than ``probe_window(target)`` (a backfill's probe
    reaching on towards today) only the rows of ``probe_window(target)`` are validated and kept:
    they are all a task may reuse, and the rest would cost a year's parsing.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("meta"), Mapping):
        raise InvalidResponseError(
            "Invalid response from OpenRouter: the probe's answer has no 'meta' object.",
            field="meta",
        )
    meta = parse_meta(payload["meta"])
    complete = meta.as_of >= day_complete_at(target, settle) and meta.end_date >= target
    own = probe_window(target)
    if complete and asked is not None and asked != own and isinstance(payload.get("data"), list):
        first, last = own.start.isoformat(), own.end.isoformat()
        rows = [
            r
            for r in payload["data"]
            if not isinstance(r, Mapping) or first <= str(r.get("date")) <= last
        ]
        payload = {**payload, "data": rows}
    rankings = parse_rankings_daily(payload, asked or own) if complete else None
    return ProbeResult(target, complete, meta.as_of, meta.end_date, rankings)


def is_not_served_yet(error: BadRequestError) -> bool:
    """Whether a 400 to a probe means "that day is not in the dataset yet".

    The API refuses a window that starts after its last complete day ("start_date ... is after
    end_date ..."). The probe's own parameters are validated locally, so a 400 about the dates is
    that refusal; any other 400 is a real error.
    """
    return error.status == 400 and "date" in (error.api_message or "").lower()


def next_probe_delay(
    now: datetime, complete_at: datetime, poke_interval: float, max_wait: float
) -> float:
    """Seconds to wait before the next probe: stateless exponential backoff.

    Wait as long as the day has already been overdue (``now - complete_at``), at least
    ``poke_interval`` and at most ``max_wait``. Probes thus land near ``complete_at + 0, p, 2p,
    4p, ...`` and the schedule survives reschedules and triggerer restarts without a counter.
    """
    overdue = max(0.0, (now - complete_at).total_seconds())
    return max(0.0, min(max_wait, max(poke_interval, overdue)))


def _jsonable(value: Any) -> Any:
    """``value`` reduced to JSON types (unknown meta extras may hold Decimals)."""
    return json.loads(json.dumps(value, default=str))


def probe_record(
    result: ProbeResult, base_url: str, openrouter_conn_id: str, fetched_at: datetime
) -> dict[str, Any]:
    """The XCom value of a successful probe: its validated rows and verbatim meta, no secrets.

    Layout (stable, documented): ``{"window": {"start", "end"}, "openrouter_conn_id", "base_url",
    "fetched_at", "payload": {"data": [...], "meta": {...}}}``; ``payload`` re-validates with
    :func:`~airflow_provider_openrouter.api.datasets.rankings_daily.parse_rankings_daily`.
    """
    if result.rankings is None:
        raise ValueError("only a probe that proved its day complete is recorded")
    window = probe_window(
        result.target
    )  # a wider answer keeps only these rows (all a task may reuse)
    rows = [
        row.to_record() for row in result.rankings.rows if window.start <= row.date <= window.end
    ]
    return {
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "openrouter_conn_id": openrouter_conn_id,
        "base_url": base_url,
        "fetched_at": fetched_at.astimezone(timezone.utc).isoformat(),
        "payload": {
            "data": rows,
            "meta": _jsonable(dict(result.rankings.meta.raw)),
        },
    }


def rankings_from_record(
    record: Any,
    window: Window,
    openrouter_conn_id: str,
    now: datetime | None = None,
    max_age: timedelta = PROBE_MAX_AGE,
) -> RankingsDaily | None:
    """The validated answer held by a probe record, reduced to the rows of ``window``, if the probe's
    window contains ``window``; else ``None``. ``meta`` and ``requested`` stay the probe's."""
    if not isinstance(record, Mapping) or not isinstance(record.get("payload"), Mapping):
        return None
    if record.get("openrouter_conn_id") != openrouter_conn_id or not isinstance(
        record.get("window"), Mapping
    ):
        return None
    try:
        probed = Window(
            date.fromisoformat(str(record["window"]["start"])),
            date.fromisoformat(str(record["window"]["end"])),
        )
    except (KeyError, ValueError):
        return None
    if not (probed.start <= window.start and window.end <= probed.end):
        return None
    try:
        fetched_at = datetime.fromisoformat(str(record.get("fetched_at")))
    except ValueError:
        return None
    if fetched_at.tzinfo is None or (now or utcnow()) - fetched_at > max_age:
        return None
    try:
        rankings = parse_rankings_daily(record["payload"], probed)
    except InvalidResponseError:
        return None
    if not (rankings.meta.start_date <= window.start and window.end <= rankings.meta.end_date):
        return None  # the API did not answer for every day asked
    rows = tuple(row for row in rankings.rows if window.start <= row.date <= window.end)
    return RankingsDaily(meta=rankings.meta, rows=rows, requested=rankings.requested)


def reusable_probe(
    context: Context, window: Window, openrouter_conn_id: str
) -> RankingsDaily | None:
    """The as_of sensor's probe answer if it holds every day the calling task needs, else ``None``.

    Looks at the XCom :data:`PROBE_XCOM_KEY` of the calling task's direct upstream tasks in the
    same DAG run. Reused only when the probe's window contains ``window`` (the answer may hold
    more days: the caller picks its own), the connection id is the same, the probe is younger than
    :data:`PROBE_MAX_AGE` and it re-validates. Never raises for a missing or unusable probe: the
    caller then makes its own request.
    """
    task = context["task"]
    upstream = sorted(getattr(task, "upstream_task_ids", ()) or ())
    if not upstream:
        return None
    records = context["ti"].xcom_pull(task_ids=upstream, key=PROBE_XCOM_KEY)
    if not isinstance(records, list):
        records = [records]
    for record in records:
        rankings = rankings_from_record(record, window, openrouter_conn_id)
        if rankings is not None:
            return rankings
    return None
