"""The provider's metrics, sent through Airflow's ``Stats`` (StatsD, Datadog or OpenTelemetry, as
``[metrics]`` configures the deployment; nothing is sent when metrics are off).

Names are few and fixed; what varies goes in tags, and every tag takes a handful of values
(endpoint paths are constants, never carry ids). Plain StatsD drops tags unless
``[metrics] statsd_influxdb_enabled`` is on; Datadog and OpenTelemetry keep them.

=====================================  =======  ==========================================
name                                   type     tags
=====================================  =======  ==========================================
``openrouter.api.requests``            counter  ``endpoint``, ``status_class`` (2xx, 4xx, 5xx, error)
``openrouter.api.rate_limited``        counter  ``endpoint`` (every HTTP 429 answer)
``openrouter.quota.deferrals``         counter  ``dataset``, ``reason`` (quota, rate_limit)
``openrouter.sensor.probes``           counter  ``outcome`` (complete, incomplete, refused, failed)
``openrouter.lake.rows_written``       counter  ``dataset``
``openrouter.lake.bytes_written``      counter  ``dataset``
``openrouter.lake.partitions_written`` counter  ``dataset``, ``status`` (created, restated, replaced, repaired)
``openrouter.lake.partitions_rewritten`` counter ``dataset`` (restated or replaced: earlier data overwritten)
``openrouter.as_of.lag``               gauge    ``dataset``: seconds from the end of the newest complete day to now
=====================================  =======  ==========================================

The API client (which must not import Airflow) gets :func:`record_request` as a callback from the
hook. Emitting never raises: a metrics backend that fails costs a log line, not a task.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.runtime import probe
from airflow_provider_openrouter.windows.intervals import day_complete_at, last_complete_day

if TYPE_CHECKING:
    from airflow_provider_openrouter.runtime.probe import ProbeOutcome

log = logging.getLogger(__name__)

PREFIX = "openrouter"
REQUESTS = f"{PREFIX}.api.requests"
RATE_LIMITED = f"{PREFIX}.api.rate_limited"
QUOTA_DEFERRALS = f"{PREFIX}.quota.deferrals"
SENSOR_PROBES = f"{PREFIX}.sensor.probes"
ROWS_WRITTEN = f"{PREFIX}.lake.rows_written"
BYTES_WRITTEN = f"{PREFIX}.lake.bytes_written"
PARTITIONS_WRITTEN = f"{PREFIX}.lake.partitions_written"
PARTITIONS_REWRITTEN = f"{PREFIX}.lake.partitions_rewritten"
AS_OF_LAG = f"{PREFIX}.as_of.lag"

#: Every metric name this provider sends.
NAMES = (
    REQUESTS,
    RATE_LIMITED,
    QUOTA_DEFERRALS,
    SENSOR_PROBES,
    ROWS_WRITTEN,
    BYTES_WRITTEN,
    PARTITIONS_WRITTEN,
    PARTITIONS_REWRITTEN,
    AS_OF_LAG,
)


def _stats() -> Any:
    """Airflow's stats facade: ``airflow.sdk.observability.stats`` (3.2+), else ``airflow.stats.Stats``."""
    try:
        from airflow.sdk.observability import stats

        return stats
    except ImportError:  # pragma: no cover - Airflow 3.0/3.1
        from airflow.stats import Stats

        return Stats


def incr(name: str, count: int = 1, tags: dict[str, str] | None = None) -> None:
    try:
        _stats().incr(name, count, tags=tags or {})
    except Exception:
        log.debug("Could not send metric %s.", name, exc_info=True)


def gauge(name: str, value: float, tags: dict[str, str] | None = None) -> None:
    try:
        _stats().gauge(name, value, tags=tags or {})
    except Exception:
        log.debug("Could not send metric %s.", name, exc_info=True)


def endpoint_tag(path: str) -> str:
    """``/datasets/rankings-daily`` -> ``datasets.rankings-daily`` (a tag value without ``/``)."""
    return path.strip("/").replace("/", ".") or "root"


def status_class(status: int | None) -> str:
    """``2xx`` .. ``5xx`` for an HTTP status, ``error`` for a transport failure (no answer)."""
    return "error" if status is None else f"{status // 100}xx"


def record_request(method: str, path: str, status: int | None) -> None:
    """Callback of :class:`~airflow_provider_openrouter.api.client.OpenRouterClient`: one attempt sent."""
    endpoint = endpoint_tag(path)
    incr(REQUESTS, tags={"endpoint": endpoint, "status_class": status_class(status)})
    if status == 429:
        incr(RATE_LIMITED, tags={"endpoint": endpoint})


def record_deferral(dataset: str, quota: bool) -> None:
    incr(QUOTA_DEFERRALS, tags={"dataset": dataset, "reason": "quota" if quota else "rate_limit"})


def record_probe(outcome: str) -> None:
    incr(SENSOR_PROBES, tags={"outcome": outcome})


def counted_probe(outcome: ProbeOutcome) -> ProbeOutcome:
    """Count one as_of probe by its outcome (``complete``, ``incomplete``, ``refused``, ``failed``)."""
    if isinstance(outcome, probe.Answered):
        record_probe("complete" if outcome.result.complete else "incomplete")
    elif isinstance(outcome, probe.NotServedYet):
        record_probe("incomplete")
    elif isinstance(outcome, probe.RetryAt):
        record_probe("refused")
    else:
        record_probe("failed")
    return outcome


def as_of_lag_seconds(as_of: datetime, now: datetime | None = None) -> float:
    """Seconds from the end of the newest day ``as_of`` proves complete to ``now``."""
    newest_end = day_complete_at(last_complete_day(as_of))
    return max(0.0, ((now or datetime.now(timezone.utc)) - newest_end).total_seconds())


def record_landing(
    dataset: str, statuses: list[tuple[str, int, int]], as_of: datetime | None
) -> None:
    """One run's partitions: ``(status, rows, bytes)`` each; unchanged ones count nothing."""
    rows = size = 0
    for status, row_count, byte_count in statuses:
        if status == "unchanged":
            continue
        rows += row_count
        size += byte_count
        incr(PARTITIONS_WRITTEN, tags={"dataset": dataset, "status": status})
        if status in ("restated", "replaced"):
            incr(PARTITIONS_REWRITTEN, tags={"dataset": dataset})
    if rows:
        incr(ROWS_WRITTEN, rows, tags={"dataset": dataset})
    if size:
        incr(BYTES_WRITTEN, size, tags={"dataset": dataset})
    if as_of is not None:
        gauge(AS_OF_LAG, as_of_lag_seconds(as_of), tags={"dataset": dataset})
