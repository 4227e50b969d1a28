"""AnalyticsQueryOperator: land one analytics query per UTC day of a DAG run in any object store.

OpenRouter's beta analytics API answers questions about *your organisation's own* usage (requests,
tokens, cost by model, provider, app, key ...) and needs a management key (see
:meth:`OpenRouterHook.get_analytics_client`). Each run asks the query for every UTC day of its data
interval, split until complete (truncation, HTTP 408: see :mod:`airflow_provider_openrouter.analytics.split`),
and writes ``{output_uri}/analytics/{query_name}/date=YYYY-MM-DD/{data.jsonl, _manifest.json}``.

Days: the run's partition in a partitioned DAG (``CronPartitionTimetable``), else its data
interval, read as the rankings operators read them
(:func:`~airflow_provider_openrouter.runtime.run_window.run_days`) but without the public datasets'
2025-01-01 floor. The queried time range is exactly those days; days not over yet are refused.

It shares the dataset operators' base (:class:`~airflow_provider_openrouter.operators.base.OpenRouterDatasetOperator`):
every day is fetched, checked and staged before the first commit (a failing day leaves nothing
visible, :class:`~airflow_provider_openrouter.operators.base.Landing`); identical data is not
touched; a day whose numbers changed upstream is rewritten with ``previous_sha256`` in its
manifest; a spent quota or a persistent rate limit defers the task until the API accepts
requests again. The layout and columns are :mod:`airflow_provider_openrouter.analytics.dataset`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from airflow_provider_openrouter.analytics import dataset
from airflow_provider_openrouter.analytics.dataset import (
    DAY_PARTITIONABLE,
    NUMBERS,
    SOURCE,
    check_rows_in_day,
    day_range,
)
from airflow_provider_openrouter.analytics.query import (
    ANALYTICS_QUERY_PATH,
    AnalyticsQuery,
    AnalyticsResult,
    TimeRange,
    format_timestamp,
    validate_query,
)
from airflow_provider_openrouter.analytics.split import (
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MIN_SLICE,
    check_complete_query,
)
from airflow_provider_openrouter.exceptions import (
    InvalidParameterError,
    OpenRouterError,
    WindowNotCompleteError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.lake.formats import exact_jsonl_bytes
from airflow_provider_openrouter.lake.land import file_facts
from airflow_provider_openrouter.lake.manifest import build_manifest, window_record
from airflow_provider_openrouter.operators.base import (
    Fetch,
    Landing,
    OpenRouterDatasetOperator,
    event_partition_keys,
    templated,
)
from airflow_provider_openrouter.operators.links import OpenRouterPartitionLink
from airflow_provider_openrouter.runtime.run_window import run_days
from airflow_provider_openrouter.windows.intervals import TIMETABLE_HINT, Window, days_for_interval

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_openrouter.runtime import lineage

__all__ = [
    "ANALYTICS",
    "DAY_PARTITIONABLE",
    "NUMBERS",
    "SOURCE",
    "AnalyticsQueryOperator",
    "analytics_partition_key",
    "build_analytics_manifest",
    "check_rows_in_day",
    "day_range",
    "exact_jsonl_bytes",
    "interval_days",
]

ANALYTICS = dataset.NAME
#: Any whole UTC day: checks that depend on the day's length only (group_limit, min_slice).
_SAMPLE_DAY = TimeRange(
    datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 1, 2, tzinfo=timezone.utc)
)
_NO_WINDOW = (
    "This run has no data interval and no partition (e.g. an asset-triggered or schedule=None DAG); analytics are "
    "queried for the run's UTC days. " + TIMETABLE_HINT
)

analytics_partition_key = dataset.partition_key


def interval_days(start: datetime, end: datetime) -> Window:
    """The UTC days of a data interval by :func:`days_for_interval`'s rules, without its dataset floor."""
    window = days_for_interval(start, end, floor=None)
    assert window is not None  # without a floor every interval has days
    return window


@dataclass(frozen=True)
class AnalyticsFetch(Fetch):
    """What one day's complete query contributed: the query sent, its merged answer, requests spent."""

    query: AnalyticsQuery | None = None
    result: AnalyticsResult | None = None
    requests: int = 0


def build_analytics_manifest(
    *,
    partition: storage.StagedPartition,
    query_name: str,
    day: date,
    run_window: Window,
    query: AnalyticsQuery,
    result: AnalyticsResult,
    requests: int,
    fetched_at: datetime,
) -> dict[str, Any]:
    """The ``_manifest.json`` of one day: the lake's one manifest schema
    (:func:`~airflow_provider_openrouter.lake.manifest.build_manifest`) for the caller's own data
    (no citation, licence or caveats), the request being the POST body, its slices and the requests
    spent; then the query name, its time range, where the rows come from and how to read numbers."""
    meta = result.metadata
    return build_manifest(
        dataset=ANALYTICS,
        own_data=True,
        window=Window(day, day),
        run_window=run_window,
        request_path=ANALYTICS_QUERY_PATH,
        request_body=query.to_body(),
        request_details={"slices": [s.to_json() for s in result.slices], "requests": requests},
        meta={
            "row_count": meta.row_count,
            "truncated": meta.truncated,
            "query_time_ms": meta.query_time_ms,
            "cached_at": meta.cached_at,
            "warnings": list(meta.warnings),
        },
        fetched_at=fetched_at,
        extra={
            "query_name": query_name,
            "time_range": query.time_range.to_json() if query.time_range else None,
            "source": SOURCE,
            "numbers": NUMBERS,
        },
        **file_facts(partition),
    )


# ------------------------------------------------------------ operator
class AnalyticsQueryOperator(OpenRouterDatasetOperator):
    """Land an analytics query (beta, management key) for each UTC day of the run.

    Writes ``{output_uri}/analytics/{query_name}/date=YYYY-MM-DD/data.jsonl`` (the API's rows, in
    its order, exact numbers) and its ``_manifest.json`` (query body, slices, warnings, requests
    spent). Never writes a truncated answer: each day is split until complete or the task fails.
    Emits an event on ``Asset(f"{output_uri}/analytics/{query_name}")`` (with the day keys in a
    partitioned run); returns a small summary (XCom). Schedule it on whole UTC days, e.g.
    ``CronDataIntervalTimetable("0 0 * * *", timezone="UTC")`` or
    ``CronPartitionTimetable("0 0 * * *", timezone="UTC", run_offset=-1, key_format="%Y-%m-%d")``.

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
    :param defer_on_rate_limit: defer until ``retry_at`` on quota exhaustion or persistent 429s (default True).
    """

    template_fields: Sequence[str] = ("output_uri", "output_conn_id", "filters")
    template_fields_renderers = {"filters": "json"}
    dataset = ANALYTICS
    request_path = ANALYTICS_QUERY_PATH
    ui_color = "#eef7ee"
    #: the organisation's own usage has no public page: only the partition written
    operator_extra_links = (OpenRouterPartitionLink(),)

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
        format: str = "jsonl",
        **kwargs: Any,
    ) -> None:
        task = kwargs.get("task_id", "?")
        for name in ("window_start", "window_end"):
            if name in kwargs:
                raise InvalidParameterError(
                    f"Task {task!r}: AnalyticsQueryOperator has no {name}; it queries the UTC days of the run "
                    "(its partition or data interval)."
                )
        self.metrics = list(metrics) if isinstance(metrics, (list, tuple)) else metrics
        self.dimensions = list(dimensions or [])
        self.filters = list(filters) if isinstance(filters, (list, tuple)) else (filters or [])
        self.granularity, self.limit, self.group_limit, self.order_by = (
            granularity,
            limit,
            group_limit,
            order_by,
        )
        self.query_name = task if query_name is None else query_name
        self.query_name_from_task_id = query_name is None
        self.min_slice, self.max_requests, self.format = min_slice, max_requests, format
        try:
            self._check_parameters()
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"Task {task!r}: {exc}") from None
        # The query's own asset always comes last among the outlets, after any explicit ones, and
        # carries the event extra (the base class would give it to the first explicit asset).
        outlets = kwargs.pop("outlets", None)
        outlets = (
            list(outlets)
            if isinstance(outlets, (list, tuple))
            else ([outlets] if outlets is not None else [])
        )
        own = (
            None
            if not isinstance(output_uri, str) or templated(output_uri)
            else Asset(f"{output_uri.rstrip('/')}/{dataset.dataset_dir(self.query_name)}")
        )
        if own is not None and own not in outlets:
            outlets.append(own)
        super().__init__(output_uri=output_uri, format=format, outlets=outlets, **kwargs)
        self.asset = own

    # ------------------------------------------------------------ checks
    def _check_parameters(self) -> None:
        dataset.check_format(self.format)
        dataset.check_query_name(self.query_name)
        dataset.check_granularity(self.granularity)
        if (
            isinstance(self.max_requests, bool)
            or not isinstance(self.max_requests, int)
            or self.max_requests < 1
        ):
            raise InvalidParameterError(
                f"max_requests={self.max_requests!r} must be a positive integer."
            )
        check_complete_query(self.build_query().with_time_range(_SAMPLE_DAY), self.min_slice)

    def build_query(self) -> AnalyticsQuery:
        """The query without a time range (raises :class:`InvalidParameterError` for a malformed one)."""
        return AnalyticsQuery(
            metrics=self.metrics,  # type: ignore[arg-type]
            dimensions=self.dimensions,  # type: ignore[arg-type]
            filters=self.filters,  # type: ignore[arg-type]
            granularity=self.granularity,
            limit=self.limit,
            group_limit=self.group_limit,
            order_by=self.order_by,  # type: ignore[arg-type]
        )

    def _asset_suffix(self) -> str | None:
        return dataset.dataset_dir(self.query_name)

    def resolve_window(self, context: Context) -> Window:
        """The UTC days of this run (its partition or data interval, no dataset floor), refusing days
        that are not over yet."""
        window = run_days(context, _NO_WINDOW, floor=None)
        assert window is not None  # without a floor every run has days
        ends = day_range(window.end).end
        now = datetime.now(timezone.utc)
        if ends > now:
            raise WindowNotCompleteError(
                f"The run's days {window} end at {format_timestamp(ends)}, after now ({format_timestamp(now)}): "
                "their usage is not complete yet. Nothing was written; run it after the last day is over."
            )
        return window

    resolve_days = resolve_window

    # ------------------------------------------------------------ the base's hooks
    def serialise(
        self, records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
    ) -> tuple[bytes, dict[str, str] | None]:
        return exact_jsonl_bytes(records), None

    def manifest(
        self,
        partition: storage.StagedPartition,
        fetch: Fetch,
        days: Window,
        run_window: Window,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        assert (
            isinstance(fetch, AnalyticsFetch)
            and fetch.query is not None
            and fetch.result is not None
        )
        return build_analytics_manifest(
            partition=partition,
            query_name=self.query_name,
            day=days.start,
            run_window=run_window,
            query=fetch.query,
            result=fetch.result,
            requests=fetch.requests,
            fetched_at=fetch.fetched_at,
        )

    def _api_base_url(self, hook: OpenRouterHook) -> str:
        return hook.get_analytics_client().base_url

    def _lineage_source(self, as_of: str) -> lineage.SourceInfo:
        from airflow_provider_openrouter.runtime import lineage

        return lineage.SourceInfo(
            name=dataset.NAME,
            description=f"{dataset.SOURCE} Query {self.query_name!r}: {self.build_query().describe()}.",
            caveats=dataset.NUMBERS,
        )

    # ------------------------------------------------------------ run
    def land(self, context: Context) -> dict[str, Any]:
        ti = context.get("ti")
        if self.query_name_from_task_id and getattr(ti, "map_index", -1) >= 0:
            raise InvalidParameterError(
                f"Task {self.task_id!r} is mapped and every map index would write analytics/{self.query_name}/: give each "
                "one its own query_name (e.g. .expand_kwargs([{'query_name': ..., 'filters': ...}, ...]))."
            )
        query = self.build_query()  # again: filters may have been templated
        window = self.resolve_window(context)
        base = self._base()
        hook = OpenRouterHook(self.openrouter_conn_id)
        run_range = day_range(window.start, window.end)
        self.log.info(
            "Querying OpenRouter analytics %s for %s (%d UTC day(s), one complete query each) via connection %r.",
            query.describe(),
            run_range,
            window.days,
            self.openrouter_conn_id,
        )
        validate_query(
            query, hook.get_analytics_meta()
        )  # a 403 or a bad name fails here, before any query request
        warnings: list[str] = []
        with Landing(self, base) as landing:
            for day in window.iter_days():
                day_query = query.with_time_range(day_range(day))
                before = hook.request_count
                result = hook.query_analytics_complete(
                    day_query, min_slice=self.min_slice, max_requests=self.max_requests
                )
                spent = hook.request_count - before
                if (
                    day_query.time_range is None or result.incomplete
                ):  # the hook never returns one; never write one
                    raise OpenRouterError(
                        f"Refusing to write an incomplete analytics answer for {day}. Nothing was written."
                    )
                check_rows_in_day(result.rows, day_query.time_range)
                key = dataset.partition_key(self.query_name, day)
                fetch = AnalyticsFetch(
                    Window(day, day),
                    {},
                    (day_query.to_body(),),
                    datetime.now(timezone.utc),
                    query=day_query,
                    result=result,
                    requests=spent,
                )
                landing.stage(
                    key, list(result.rows), dataset.columns(query), fetch, Window(day, day)
                )
                warnings.extend(w for w in result.metadata.warnings if w not in warnings)
                self.log.info(
                    "%s: %d row(s) in %d slice(s), %d request(s).",
                    key,
                    len(result.rows),
                    len(result.slices),
                    spent,
                )
            landing.commit(window)
        for warning in warnings:
            self.log.warning("OpenRouter analytics warning: %s", warning)
        return self._summary(context, window, run_range, landing, hook, warnings)

    def _summary(
        self,
        context: Context,
        window: Window,
        run_range: TimeRange,
        landing: Landing,
        hook: OpenRouterHook,
        warnings: list[str],
    ) -> dict[str, Any]:
        partitions = [p for p, _, _ in landing.items]
        rows = sum(p.row_count for p in partitions)
        counts = dict.fromkeys(("created", "restated", "replaced", "repaired", "unchanged"), 0)
        for partition in partitions:
            counts[partition.status] += 1
        written = len(partitions) - counts["unchanged"]
        self.log.info(
            "Wrote %d of %d partition(s) under %s/%s (%s); %d row(s); %d request(s) to OpenRouter (1 meta + %d query).",
            written,
            len(partitions),
            self.output_uri.rstrip("/"),
            dataset.dataset_dir(self.query_name),
            ", ".join(f"{k} {v}" for k, v in counts.items() if v),
            rows,
            hook.request_count,
            hook.request_count - 1,
        )
        summary = {
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
        self._observe(context, window, landing, hook, "")
        if self.asset is not None:
            event = context["outlet_events"][self.asset]
            extra: dict[str, Any] = {
                "dataset": ANALYTICS,
                "query_name": self.query_name,
                "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                "time_range": run_range.to_json(),
                "row_count": rows,
            }
            event.extra = extra
            keys = event_partition_keys(context, landing.items)
            if keys:
                event.add_partitions(keys)
                summary["partition_keys"] = keys
        return summary
