"""AnalyticsQueryOperator: land one analytics query per UTC day of a DAG run in any object store.

OpenRouter's beta analytics API answers questions about *your organisation's own* usage (requests,
tokens, cost by model, provider, app, key ...) and needs a management key (see
:meth:`OpenRouterHook.get_analytics_client`). Each run asks the query for every UTC day of its data
interval, split until complete (truncation, HTTP 408: see :mod:`airflow_provider_openrouter.analytics.split`),
and writes ``{output_uri}/analytics/{query_name}/date=YYYY-MM-DD/{data.jsonl, _manifest.json}``.

Days: ``[start, end)`` at 00:00 UTC covers ``start.date() .. end.date() - 1``; a zero-length interval
(Airflow 3's plain ``@daily``) covers the UTC day that ends at the logical date, as
:func:`~airflow_provider_openrouter.windows.intervals.days_for_interval` reads intervals (the public datasets'
2025-01-01 floor does not apply). The queried time range is exactly those days.

Writes follow :mod:`airflow_provider_openrouter.lake.storage`: every day is fetched, checked and staged
before the first commit (a failing day leaves nothing visible); identical data is not touched; a
day whose numbers changed upstream is rewritten with ``previous_sha256`` in its manifest.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from airflow.sdk import Asset, BaseOperator, ObjectStoragePath

from airflow_provider_openrouter import __version__
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.analytics.query import (
    ANALYTICS_QUERY_PATH,
    TIME_FIELD,
    AnalyticsQuery,
    AnalyticsResult,
    TimeRange,
    format_timestamp,
    validate_query,
)
from airflow_provider_openrouter.analytics.split import DEFAULT_MAX_REQUESTS, DEFAULT_MIN_SLICE, check_complete_query
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    InvalidResponseError,
    OpenRouterError,
    WindowNotCompleteError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.lake.manifest import MANIFEST_VERSION, window_record
from airflow_provider_openrouter.operators.base import check_uri, templated
from airflow_provider_openrouter.windows.intervals import ONE_DAY, TIMETABLE_HINT, Window, days_for_interval

if TYPE_CHECKING:
    from airflow.sdk import Context

ANALYTICS = "analytics"
#: Granularities whose buckets never straddle a UTC day (None: one total per day and group).
DAY_PARTITIONABLE = (None, "minute", "hour", "day")
SOURCE = "OpenRouter analytics API (beta): the organisation's own usage, read with a management key."
NUMBERS = (
    "Counts are JSON integers; decimal values (e.g. cost) are JSON numbers carrying every digit the API "
    "sent. Parse them as decimals (e.g. json.loads(..., parse_float=decimal.Decimal)), not binary floats."
)
_QUERY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Any whole UTC day: checks that depend on the day's length only (group_limit, min_slice).
_SAMPLE_DAY = TimeRange(datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 2, tzinfo=timezone.utc))


# ------------------------------------------------------------ pure helpers (candidates for shared modules)
def analytics_partition_key(query_name: str, day: date) -> str:
    """``analytics/{query_name}/date=YYYY-MM-DD``, relative to ``output_uri``."""
    return f"analytics/{query_name}/date={day.isoformat()}"


def _json_scalar(value: Any, ascii_only: bool) -> str:
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")  # a plain JSON number literal: every digit, never exponent-only, never a float
    raise InvalidResponseError(f"{value!r} ({type(value).__name__}) cannot be written as an exact JSON scalar.")


def exact_jsonl_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """JSON Lines like :func:`formats.jsonl_bytes` (compact, keys in record order, UTF-8), but
    ``Decimal`` values become JSON number literals with all their digits (no float rounding).
    Records are flat: values are None, bool, str, int or finite Decimal."""
    lines = []
    for record in records:
        for ascii_only in (False, True):  # a lone surrogate cannot be UTF-8: escape that record instead
            text = "{" + ",".join(json.dumps(str(k), ensure_ascii=ascii_only) + ":" + _json_scalar(v, ascii_only)
                                  for k, v in record.items()) + "}\n"
            try:
                lines.append(text.encode("utf-8"))
                break
            except UnicodeEncodeError:
                continue
    return b"".join(lines)


def interval_days(start: datetime, end: datetime) -> Window:
    """The UTC days of a data interval by :func:`days_for_interval`'s rules, without its dataset floor."""
    days_for_interval(start, end)  # raises unless both bounds are 00:00 UTC and in order
    first, stop = start.astimezone(timezone.utc).date(), end.astimezone(timezone.utc).date()
    if first == stop:
        first -= ONE_DAY
    return Window(first, stop - ONE_DAY)


def day_range(first: date, last: date | None = None) -> TimeRange:
    """``[first 00:00Z, (last or first) + 1 day 00:00Z)``."""
    return TimeRange(datetime.combine(first, time(0), tzinfo=timezone.utc),
                     datetime.combine((last or first) + ONE_DAY, time(0), tzinfo=timezone.utc))


def check_rows_in_day(rows: Sequence[Mapping[str, Any]], time_range: TimeRange) -> None:
    """Refuse rows whose time bucket (``date``) lies outside the day they are filed under."""
    for index, row in enumerate(rows):
        raw = row.get(TIME_FIELD)
        if not isinstance(raw, str):
            continue
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            continue  # a label format we do not know: the time range asked for is what binds the row
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        if not time_range.start <= moment < time_range.end:
            raise InvalidResponseError(
                f"Invalid analytics response from OpenRouter: row {index} has {TIME_FIELD}={raw!r}, outside the "
                f"time range asked for ({time_range}). Nothing was written.", field=TIME_FIELD, row=index)


def build_analytics_manifest(*, partition: storage.StagedPartition, query_name: str, day: date, run_window: Window,
                             query: AnalyticsQuery, result: AnalyticsResult, requests: int,
                             fetched_at: datetime) -> dict[str, Any]:
    """The ``_manifest.json`` of one day (the keys :func:`manifest.loads` requires, in a stable order)."""
    meta = result.metadata
    return {
        "manifest_version": MANIFEST_VERSION,
        "dataset": ANALYTICS,
        "partition": partition.key,
        "query_name": query_name,
        "window": window_record(Window(day, day)),
        "run_window": window_record(run_window),
        "time_range": query.time_range.to_json() if query.time_range else None,
        "request": {"path": ANALYTICS_QUERY_PATH, "body": query.to_body(),
                    "slices": [s.to_json() for s in result.slices], "requests": requests},
        "meta": {"row_count": meta.row_count, "truncated": meta.truncated, "query_time_ms": meta.query_time_ms,
                 "cached_at": meta.cached_at, "warnings": list(meta.warnings)},
        "row_count": partition.row_count,
        "format": partition.data_format,
        "data_file": partition.data_file,
        "sha256": partition.sha256,
        "size": partition.size,
        "previous_sha256": partition.previous_sha256,
        "fetched_at": fetched_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
        "provider_version": __version__,
        "source": SOURCE,
        "numbers": NUMBERS,
    }


# ------------------------------------------------------------ operator
class AnalyticsQueryOperator(BaseOperator):
    """Land an analytics query (beta, management key) for each UTC day of the run's data interval.

    Writes ``{output_uri}/analytics/{query_name}/date=YYYY-MM-DD/data.jsonl`` (the API's rows, in
    its order, exact numbers) and its ``_manifest.json`` (query body, slices, warnings, requests
    spent). Never writes a truncated answer: each day is split until complete or the task fails.
    Emits an event on ``Asset(f"{output_uri}/analytics/{query_name}")``; returns a small summary (XCom).
    Schedule it on whole UTC days, e.g. ``CronDataIntervalTimetable("0 0 * * *", timezone="UTC")``.

    :param output_uri: any ``ObjectStoragePath`` URL (``file:///...``, ``s3://bucket/prefix``). Templated.
    :param metrics: metric names of ``GET /analytics/meta`` (e.g. ``["total_tokens", "cost"]``).
    :param dimensions: at most 2 dimension names (e.g. ``["model"]``).
    :param filters: ``{"field", "operator", "value"}`` dicts (``in``/``not_in`` take lists). Templated.
    :param granularity: ``day`` (default), ``hour``, ``minute`` or None (one total per day);
        ``week``/``month`` are refused: their buckets span several daily partitions.
    :param query_name: the directory under ``analytics/`` (default: the task id; mapped tasks must
        give each map index its own, or they would overwrite each other's partitions).
    :param limit: rows per request (server default 1000); a smaller page means more, smaller slices.
    :param group_limit: rows per dimension group; must cover every bucket of a day (left unset, the server sizes it).
    :param order_by: ``{"field": metric|dimension|"date", "direction": "asc"|"desc"}``.
    :param min_slice: the shortest time slice a day may be split into (default one hour).
    :param max_requests: the most query requests one day may spend while splitting (default 50).
    :param output_conn_id: the connection of the object store (None for local files). Templated.
    :param openrouter_conn_id: the ``openrouter`` connection; its management key is read from extra
        ``management_api_key``, or from the connection named by extra ``management_conn_id``.
    :param format: ``jsonl`` (the only format: rows are free-form and costs exact decimals).
    """

    template_fields: Sequence[str] = ("output_uri", "output_conn_id", "filters")
    template_fields_renderers = {"filters": "json"}
    ui_color = "#eef7ee"

    def __init__(
        self,
        *,
        output_uri: str,
        metrics: Sequence[str],
        dimensions: Sequence[str] | None = None,
        filters: Sequence[Any] | None = None,
        granularity: str | None = "day",
        query_name: str | None = None,
        limit: int | None = None,
        group_limit: int | None = None,
        order_by: Mapping[str, str] | None = None,
        min_slice: timedelta = DEFAULT_MIN_SLICE,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        output_conn_id: str | None = None,
        openrouter_conn_id: str = OpenRouterHook.default_conn_name,
        format: str = "jsonl",  # noqa: A002 - the documented parameter name, as in the rankings operators
        **kwargs: Any,
    ) -> None:
        task = kwargs.get("task_id", "?")
        self.output_uri, self.output_conn_id, self.openrouter_conn_id = output_uri, output_conn_id, openrouter_conn_id
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else metrics
        self.dimensions = list(dimensions or [])
        self.filters = list(filters) if isinstance(filters, (list, tuple)) else (filters or [])
        self.granularity, self.limit, self.group_limit, self.order_by = granularity, limit, group_limit, order_by
        self.query_name = task if query_name is None else query_name
        self.query_name_from_task_id = query_name is None
        self.min_slice, self.max_requests, self.format = min_slice, max_requests, format
        if not isinstance(output_uri, str) or not output_uri.strip():
            raise InvalidParameterError(f"Task {task!r}: output_uri must be a URL such as s3://bucket/prefix or file:///abs/path.")
        if not templated(output_uri):
            check_uri(output_uri, task)
        try:
            self._check_parameters()
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"Task {task!r}: {exc}") from None
        self.asset = None if templated(output_uri) else Asset(f"{output_uri.rstrip('/')}/{ANALYTICS}/{self.query_name}")
        outlets = kwargs.pop("outlets", None)
        outlets = list(outlets) if isinstance(outlets, (list, tuple)) else ([outlets] if outlets is not None else [])
        if self.asset is not None and self.asset not in outlets:
            outlets.append(self.asset)
        super().__init__(outlets=outlets, **kwargs)

    # ------------------------------------------------------------ checks
    def _check_parameters(self) -> None:
        if self.format != "jsonl":
            raise InvalidParameterError(
                f"format={self.format!r} is not supported for analytics; use 'jsonl' (rows are free-form and "
                "decimal costs are kept exact as JSON numbers).")
        if not isinstance(self.openrouter_conn_id, str) or not self.openrouter_conn_id:
            raise InvalidParameterError("openrouter_conn_id must name an Airflow connection of type openrouter.")
        if not isinstance(self.query_name, str) or not _QUERY_NAME_RE.fullmatch(self.query_name):
            raise InvalidParameterError(
                f"query_name={self.query_name!r} must be 1-128 letters, digits, '.', '_' or '-' (it is a directory name).")
        if self.granularity not in DAY_PARTITIONABLE:
            why = ("its buckets span several days, so they cannot be filed under one UTC day" if self.granularity in ("week", "month")
                   else "this operator partitions by UTC day and only knows buckets that nest in a day")
            raise InvalidParameterError(
                f"granularity={self.granularity!r} cannot be written to daily partitions: {why}. Use 'day', 'hour', "
                "'minute' or None, and aggregate weeks or months downstream.")
        if isinstance(self.max_requests, bool) or not isinstance(self.max_requests, int) or self.max_requests < 1:
            raise InvalidParameterError(f"max_requests={self.max_requests!r} must be a positive integer.")
        check_complete_query(self.build_query().with_time_range(_SAMPLE_DAY), self.min_slice)

    def build_query(self) -> AnalyticsQuery:
        """The query without a time range (raises :class:`InvalidParameterError` for a malformed one)."""
        return AnalyticsQuery(
            metrics=self.metrics, dimensions=self.dimensions, filters=self.filters,  # type: ignore[arg-type]
            granularity=self.granularity, limit=self.limit, group_limit=self.group_limit, order_by=self.order_by,  # type: ignore[arg-type]
        )

    def resolve_days(self, context: Context) -> Window:
        """The UTC days of this run's data interval (refusing days that are not over yet)."""
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise InvalidParameterError(
                "This run has no data interval (e.g. an asset-triggered or schedule=None DAG); analytics are "
                "queried for the run's UTC days. " + TIMETABLE_HINT)
        window = interval_days(start, end)
        ends = day_range(window.end).end
        now = datetime.now(timezone.utc)
        if ends > now:
            raise WindowNotCompleteError(
                f"The run's days {window} end at {format_timestamp(ends)}, after now ({format_timestamp(now)}): "
                "their usage is not complete yet. Nothing was written; run it after the last day is over.")
        return window

    # ------------------------------------------------------------ run
    def execute(self, context: Context) -> dict[str, Any]:
        ti = context.get("ti")
        if self.query_name_from_task_id and getattr(ti, "map_index", -1) >= 0:
            raise InvalidParameterError(
                f"Task {self.task_id!r} is mapped and every map index would write analytics/{self.query_name}/: give each "
                "one its own query_name (e.g. .expand_kwargs([{'query_name': ..., 'filters': ...}, ...])).")
        query = self.build_query()  # again: filters may have been templated
        window = self.resolve_days(context)
        check_uri(self.output_uri, self.task_id)
        base = ObjectStoragePath(self.output_uri, conn_id=self.output_conn_id or None)
        hook = OpenRouterHook(self.openrouter_conn_id)
        run_range = day_range(window.start, window.end)
        self.log.info("Querying OpenRouter analytics %s for %s (%d UTC day(s), one complete query each) via connection %r.",
                      query.describe(), run_range, window.days, self.openrouter_conn_id)
        validate_query(query, hook.get_analytics_meta())  # a 403 or a bad name fails here, before any query request
        staged: list[tuple[storage.StagedPartition, dict[str, Any]]] = []
        pending: list[storage.StagedPartition] = []
        warnings: list[str] = []
        try:
            for day in window.iter_days():
                day_query = query.with_time_range(day_range(day))
                before = hook.request_count
                result = hook.query_analytics_complete(day_query, min_slice=self.min_slice, max_requests=self.max_requests)
                spent = hook.request_count - before
                if day_query.time_range is None or result.incomplete:  # the hook never returns one; never write one
                    raise OpenRouterError(f"Refusing to write an incomplete analytics answer for {day}. Nothing was written.")
                check_rows_in_day(result.rows, day_query.time_range)
                key = analytics_partition_key(self.query_name, day)
                partition = storage.stage_partition(storage.join(base, key), key, exact_jsonl_bytes(result.rows),
                                                    self.format, len(result.rows))
                pending.append(partition)
                staged.append((partition, build_analytics_manifest(
                    partition=partition, query_name=self.query_name, day=day, run_window=window, query=day_query,
                    result=result, requests=spent, fetched_at=datetime.now(timezone.utc))))
                warnings.extend(w for w in result.metadata.warnings if w not in warnings)
                self.log.info("%s: %d row(s) in %d slice(s), %d request(s).", key, len(result.rows), len(result.slices), spent)
            for partition, manifest in staged:
                pending.remove(partition)
                storage.commit_partition(partition, manifest)
                if partition.status == "restated":
                    self.log.warning("Restated upstream: %s changed (sha256 %s -> %s).",
                                     partition.key, partition.previous_sha256, partition.sha256)
        except BaseException:
            for partition in pending:  # staged, never committed: remove (a commit that started stays)
                storage.discard_staged(partition)
            raise
        for warning in warnings:
            self.log.warning("OpenRouter analytics warning: %s", warning)
        return self._report(context, window, run_range, [p for p, _ in staged], hook, warnings)

    def _report(self, context: Context, window: Window, run_range: TimeRange, partitions: list[storage.StagedPartition],
                hook: OpenRouterHook, warnings: list[str]) -> dict[str, Any]:
        rows = sum(p.row_count for p in partitions)
        counts = {status: 0 for status in ("created", "restated", "replaced", "repaired", "unchanged")}
        for partition in partitions:
            counts[partition.status] += 1
        written = len(partitions) - counts["unchanged"]
        self.log.info(
            "Wrote %d of %d partition(s) under %s/%s/%s (%s); %d row(s); %d request(s) to OpenRouter (1 meta + %d query).",
            written, len(partitions), self.output_uri.rstrip("/"), ANALYTICS, self.query_name,
            ", ".join(f"{k} {v}" for k, v in counts.items() if v), rows, hook.request_count, hook.request_count - 1,
        )
        if self.asset is not None:
            context["outlet_events"][self.asset].extra = {
                "dataset": ANALYTICS, "query_name": self.query_name,
                "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                "time_range": run_range.to_json(), "row_count": rows,
            }
        return {
            "dataset": ANALYTICS,
            "query_name": self.query_name,
            "output_uri": self.output_uri,
            "format": self.format,
            "window": window_record(window),
            "time_range": run_range.to_json(),
            "requests": hook.request_count,
            "row_count": rows,
            "partition_count": len(partitions),
            "partitions_written": written,
            "partitions": counts,
            "restated": [p.key for p in partitions if p.status == "restated"],
            "warnings": warnings[:10],
        }
