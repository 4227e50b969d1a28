"""Shared machinery of the dataset operators: run window, answer checks, staged commit, report.

:class:`Landing` holds one run's partitions on the lake's one landing path
(:class:`airflow_provider_openrouter.lake.land.Batch`): every one is staged (hidden ``_pending-*``
files) after all responses were fetched and validated, then all are committed in order; on any
error the staged files that were never committed are removed, so a failed run leaves the previous
output exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator, ObjectStoragePath

from airflow_provider_openrouter.api.datasets import CAVEATS
from airflow_provider_openrouter.compat import AirflowSkipException
from airflow_provider_openrouter.exceptions import (
    BadRequestError,
    InvalidParameterError,
    InvalidResponseError,
    QuotaExhaustedError,
    RateLimitedError,
    WindowNotCompleteError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.lake.land import Batch, file_facts
from airflow_provider_openrouter.lake.manifest import build_manifest, citation, window_record
from airflow_provider_openrouter.operators.links import (
    PARTITION_XCOM_KEY,
    OpenRouterDatasetPageLink,
    OpenRouterPartitionLink,
)
from airflow_provider_openrouter.runtime.run_window import (  # noqa: F401 (re-exported for callers of the old path)
    check_partition_schedule,
    is_partitioned_run,
    partition_spec_of,
    run_days,
)
from airflow_provider_openrouter.windows.intervals import (
    DATASET_FLOOR,
    Window,
    clamp_to_floor,
    parse_day,
)

# The runtime's lineage and metrics modules are imported where a run uses them, not here: a DAG file
# that uses the operators does not pay for them.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_openrouter.api.answers import DatasetMeta
    from airflow_provider_openrouter.runtime import lineage


def templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@dataclass(frozen=True)
class Fetch:
    """What one request (or one paged app-rankings call) contributed to the partitions it feeds."""

    window: Window
    meta: Mapping[str, Any]
    params: tuple[Mapping[str, Any], ...]
    fetched_at: datetime


class Landing(Batch):
    """The partitions of one run, landed by the lake's one landing path (:class:`~.lake.land.Batch`):
    all staged first, then committed in order; on any error, the staged files of partitions whose
    commit never started are removed (the context manager). ``items``: ``(partition, Fetch, days)``
    of the run's window; ``lookback``: already-landed partitions before it that were re-verified."""

    def __init__(self, operator: OpenRouterDatasetOperator, base: ObjectStoragePath) -> None:
        super().__init__(base, operator.format, operator.log)
        self.operator = operator
        #: Already-landed partitions before the run's window, re-verified (the lookback).
        self.lookback: list[tuple[storage.StagedPartition, Fetch, Window]] = []
        #: Manifest keys per partition (e.g. ``final``), and the unchanged partitions whose
        #: manifest records a new verification (their data file is not touched).
        self.manifest_extra: dict[str, Mapping[str, Any]] = {}
        self.refresh: set[str] = set()
        #: Columns of the staged partitions (for the lineage schema facet).
        self.columns: Sequence[tuple[str, str]] = ()

    def stage(  # type: ignore[override]
        self,
        key: str,
        records: list[dict[str, Any]],
        columns: Sequence[tuple[str, str]],
        fetch: Fetch,
        days: Window,
        *,
        manifest_extra: Mapping[str, Any] | None = None,
        refresh: bool = False,
        lookback: bool = False,
    ) -> storage.StagedPartition:
        """Stage one partition. ``manifest_extra``: keys added to its manifest; ``refresh``: rewrite the
        manifest even when the data is unchanged; ``lookback``: a re-verified partition outside the run's window."""
        self.columns = columns
        partition = super().stage(key, records, columns, window=days, info=fetch)
        if lookback:
            self.lookback.append(self.items.pop())
        if manifest_extra:
            self.manifest_extra[key] = dict(manifest_extra)
        if refresh:
            self.refresh.add(key)
        return partition

    @property
    def restated(self) -> list[tuple[storage.StagedPartition, Fetch, Window]]:
        """Partitions whose data changed upstream (run window and lookback), in day order."""
        return sorted(
            (item for item in self.items + self.lookback if item[0].status == "restated"),
            key=lambda i: i[2].start,
        )

    def serialise(
        self, records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
    ) -> tuple[bytes, dict[str, str] | None]:
        return self.operator.serialise(records, columns)

    def commit(self, run_window: Window, extra: Mapping[str, Any] | None = None) -> None:  # type: ignore[override]
        op = self.operator

        def manifest(
            partition: storage.StagedPartition, fetch: Any, days: Window | None
        ) -> dict[str, Any]:
            assert days is not None  # stage() gives every partition its days
            return op.manifest(
                partition,
                fetch,
                days,
                run_window,
                {**(extra or {}), **self.manifest_extra.get(partition.key, {})},
            )

        run_items = self.items
        self.items = run_items + self.lookback  # committed together, in day order
        try:
            self.commit_manifests(manifest)
            for partition, fetch, days in self.items:
                if partition.status == "unchanged" and partition.key in self.refresh:
                    storage.rewrite_manifest(partition, manifest(partition, fetch, days))
        finally:
            self.items = sorted(run_items, key=lambda item: item[2].start)


class OpenRouterDatasetOperator(BaseOperator):
    """Base of the dataset operators: output location, run window, checks of the answered window, summary.

    Subclasses set ``dataset`` and ``request_path``, implement ``_asset_suffix`` and ``execute``
    (fetch, ``_check_answer``, stage every partition in a :class:`Landing`, commit, ``_report``).
    Parameters: see :class:`~airflow_provider_openrouter.operators.rankings.RankingsDailyOperator`.
    """

    template_fields: Sequence[str] = ("output_uri", "output_conn_id", "window_start", "window_end")
    dataset: str = ""
    #: How to read the dataset's numbers, in every manifest (the token rankings' caveats by default).
    caveats: str = CAVEATS
    request_path: str = ""
    operator_extra_links: tuple[Any, ...] = (OpenRouterDatasetPageLink(), OpenRouterPartitionLink())

    def __init__(
        self,
        *,
        output_uri: str,
        output_conn_id: str | None = None,
        openrouter_conn_id: str = OpenRouterHook.default_conn_name,
        format: str = "jsonl",
        window_start: str | date | None = None,
        window_end: str | date | None = None,
        defer_on_rate_limit: bool = True,
        **kwargs: Any,
    ) -> None:
        task = kwargs.get("task_id", "?")
        if not isinstance(output_uri, str) or not output_uri.strip():
            raise InvalidParameterError(
                f"Task {task!r}: output_uri must be a URL such as s3://bucket/prefix or file:///abs/path."
            )
        if not templated(output_uri):
            check_uri(output_uri, task)
        storage.require_format(format)
        if not isinstance(openrouter_conn_id, str) or not openrouter_conn_id:
            raise InvalidParameterError(
                f"Task {task!r}: openrouter_conn_id must name an Airflow connection of type openrouter."
            )
        if (window_start is None) != (window_end is None):
            raise InvalidParameterError(
                f"Task {task!r}: give window_start and window_end together (inclusive UTC days), or neither to use the run's data interval."
            )
        for name, value in (("window_start", window_start), ("window_end", window_end)):
            if value is not None and not templated(value):
                parse_day(value, name)
        self.output_uri = output_uri
        self.output_conn_id = output_conn_id
        self.openrouter_conn_id = openrouter_conn_id
        self.format = format
        self.window_start = window_start
        self.window_end = window_end
        outlets = kwargs.pop("outlets", None)
        outlets = (
            list(outlets)
            if isinstance(outlets, (list, tuple))
            else ([outlets] if outlets is not None else [])
        )
        assets = [o for o in outlets if isinstance(o, Asset)]
        if assets:
            # explicit outlets win: the event extra goes to the first asset (a mapped task's default
            # per-category asset would not be registered at parse time and its events would be dropped)
            self.asset: Asset | None = assets[0]
        else:
            self.asset = self._default_asset()
            if self.asset is not None:
                outlets.append(self.asset)
        self.defer_on_rate_limit = defer_on_rate_limit
        super().__init__(outlets=outlets, **kwargs)
        check_partition_schedule(self)

    # ------------------------------------------------------------ execution
    def execute(self, context: Context) -> dict[str, Any]:
        """Land the run's window; when the API's quota or rate limit stops it, defer until the API
        says requests succeed again (nothing is written before that), then start over."""
        try:
            return self.land(context)
        except RateLimitedError as exc:
            if not self.defer_on_rate_limit or exc.retry_at is None:
                raise
            resume = max(exc.retry_at, datetime.now(timezone.utc)) + timedelta(seconds=1)
            from airflow_provider_openrouter.runtime import metrics

            metrics.record_deferral(self.dataset, isinstance(exc, QuotaExhaustedError))
            self.log.warning(
                "%s Deferring until %s without holding a worker slot; nothing was written.",
                exc,
                resume.isoformat(),
            )
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(trigger=DateTimeTrigger(moment=resume), method_name="execute_after_wait")

    def execute_after_wait(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after a quota or rate-limit deferral: land the window from the start."""
        return self.execute(context)

    def land(self, context: Context) -> dict[str, Any]:
        """Fetch, validate, stage and commit the run's partitions (implemented by each operator)."""
        raise NotImplementedError

    # ------------------------------------------------------------ hooks for subclasses
    def _asset_suffix(self) -> str | None:
        raise NotImplementedError

    def serialise(
        self, records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
    ) -> tuple[bytes, dict[str, str] | None]:
        """The data file's bytes in this operator's format and, for parquet, its column types."""
        return storage.serialise(records, columns, self.format)

    def manifest(
        self,
        partition: storage.StagedPartition,
        fetch: Fetch,
        days: Window,
        run_window: Window,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``_manifest.json`` committing one staged partition (see :mod:`airflow_provider_openrouter.lake.manifest`)."""
        return build_manifest(
            dataset=self.dataset,
            window=days,
            run_window=run_window,
            request_path=self.request_path,
            request_params=fetch.params,
            meta=fetch.meta,
            fetched_at=fetch.fetched_at,
            extra=extra,
            caveats=self.caveats,
            **file_facts(partition),
        )

    def _default_asset(self) -> Asset | None:
        """``Asset("{output_uri}/<dataset dir>")``; none when the URI is only known at run time."""
        suffix = self._asset_suffix()
        if templated(self.output_uri) or suffix is None:
            return None
        return Asset(self.output_uri.rstrip("/") + "/" + suffix)

    # ------------------------------------------------------------ window
    def resolve_window(self, context: Context) -> Window | None:
        """The UTC days of this run, clamped to the dataset's first day; None if all precede it.

        ``window_start``/``window_end`` if set; else the run's partition in a partitioned DAG
        (e.g. ``CronPartitionTimetable("0 0 * * *", timezone="UTC", run_offset=-1, key_format="%Y-%m-%d")``);
        else its data interval (see :func:`run_days`)."""
        if self.window_start is not None and self.window_end is not None:
            first = parse_day(self.window_start, "window_start")
            last = parse_day(self.window_end, "window_end")
            if last < first:
                raise InvalidParameterError(f"window_end {last} is before window_start {first}.")
            return clamp_to_floor(first, last)
        return run_days(
            context,
            (
                "This run has no data interval and no partition (e.g. an asset-triggered or schedule=None DAG): "
                "set window_start and window_end (YYYY-MM-DD, templated if you like)."
            ),
        )

    def _window_or_skip(self, context: Context) -> Window:
        window = self.resolve_window(context)
        if window is None:
            run = (
                f"partition {context.get('partition_key')!r}"
                if is_partitioned_run(context)
                else f"data interval {context.get('data_interval_start')} .. {context.get('data_interval_end')}"
            )
            message = (
                f"Skipping: the whole window lies before {DATASET_FLOOR}, the first day of OpenRouter's "
                f"datasets ({run})."
            )
            self.log.info(message)
            raise AirflowSkipException(message)
        if window.clamped_from is not None:
            self.log.warning(
                "The window starts at %s, before the dataset's first day: fetching %s only (clamped; recorded in the manifests).",
                window.clamped_from,
                window,
            )
        return window

    def _base(self) -> ObjectStoragePath:
        check_uri(self.output_uri, self.task_id)
        return ObjectStoragePath(self.output_uri, conn_id=self.output_conn_id or None)

    # ------------------------------------------------------------ answers
    def _translate_bad_request(self, exc: BadRequestError, window: Window) -> Exception:
        text = (exc.api_message or str(exc)).lower()
        if "complete" in text or ("start_date" in text and "after" in text):
            return WindowNotCompleteError(
                f"OpenRouter has no complete data for {window} yet ({exc.api_message}). Nothing was written. "
                "Retry after the window's last UTC day is complete (OpenRouterAsOfSensor waits for it)."
            )
        return exc

    def _check_answer(self, meta: DatasetMeta, asked: Window) -> None:
        """Fail before writing anything unless the API answered exactly the window asked for."""
        if meta.end_date < asked.end and meta.start_date == asked.start:
            raise WindowNotCompleteError(
                f"OpenRouter's {self.dataset} data ends at {meta.end_date} (as of {meta.as_of.isoformat()}), so "
                f"{asked} is not complete yet: the API clamped the end. Nothing was written. Retry after "
                f"{asked.end} is complete (OpenRouterAsOfSensor waits for it), or shorten the window."
            )
        if meta.window != Window(asked.start, asked.end):
            raise InvalidResponseError(
                f"Invalid response from OpenRouter: asked for {asked}, the answer covers {meta.window}. Nothing was written.",
                field="meta",
            )

    # ------------------------------------------------------------ report
    def _report(
        self, context: Context, window: Window, landing: Landing, hook: OpenRouterHook
    ) -> dict[str, Any]:
        """Log what was written where and the citation; set the asset event's extra; return the XCom summary."""
        staged = landing.items
        as_of = max(str(fetch.meta.get("as_of", "")) for _, fetch, _ in staged)
        rows = sum(p.row_count for p, _, _ in staged)
        counts = dict.fromkeys(("created", "restated", "replaced", "repaired", "unchanged"), 0)
        for partition, _, _ in staged:
            counts[partition.status] += 1
        written = len(staged) - counts["unchanged"]
        self.log.info(
            "Wrote %d of %d partition(s) under %s (%s); %d row(s); %d request(s) to OpenRouter (%d answered 429).",
            written,
            len(staged),
            self.output_uri,
            ", ".join(f"{k} {v}" for k, v in counts.items() if v),
            rows,
            hook.request_count,
            hook.rate_limited_count,
        )
        self.log.info("%s", citation(self.dataset, as_of))
        summary = {
            "dataset": self.dataset,
            "output_uri": self.output_uri,
            "format": self.format,
            "window": window_record(window),
            "as_of": as_of,
            "requests": hook.request_count,
            "row_count": rows,
            "partition_count": len(staged),
            "partitions_written": written,
            "partitions": counts,
            "restated": [p.key for p, _, _ in landing.restated],
        }
        if landing.lookback:
            summary["lookback"] = {
                "reverified": len(landing.lookback),
                "restated": sum(1 for p, _, _ in landing.lookback if p.status == "restated"),
                "manifests_updated": sum(
                    1
                    for p, _, _ in landing.lookback
                    if p.status == "unchanged" and p.key in landing.refresh
                ),
            }
        self._observe(context, window, landing, hook, as_of)
        if self.asset is not None:
            event = context["outlet_events"][self.asset]
            event.extra = {
                "dataset": self.dataset,
                "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                "as_of": as_of,
                "row_count": rows,
            }
            if landing.restated:
                # downstream DAGs recompute these days: their data changed upstream since it landed
                event.extra["restated"] = True
                event.extra["restated_days"] = [d.start.isoformat() for _, _, d in landing.restated]
            keys = event_partition_keys(context, [*staged, *landing.restated])
            if keys:
                event.add_partitions(keys)
                summary["partition_keys"] = keys
        return summary

    # ------------------------------------------------------------ observability
    def _observe(
        self, context: Context, window: Window, landing: Landing, hook: OpenRouterHook, as_of: str
    ) -> None:
        """Metrics of what landed, the lineage record (read by :meth:`get_openlineage_facets_on_complete`)
        and the newest partition's URI for :class:`~airflow_provider_openrouter.operators.links.OpenRouterPartitionLink`."""
        from airflow_provider_openrouter.runtime import lineage, metrics

        staged = (
            landing.items + landing.lookback
        )  # re-verified partitions before the window count too
        try:
            seen: datetime | None = (
                datetime.fromisoformat(as_of.replace("Z", "+00:00")) if as_of else None
            )
        except ValueError:
            seen = None
        metrics.record_landing(
            self.dataset, [(p.status, p.row_count, p.size) for p, _, _ in staged], seen
        )
        parameters: list[Mapping[str, Any]] = []
        for _, fetch, _ in staged:
            parameters.extend(p for p in fetch.params if p not in parameters)
        self._lineage_record = lineage.LandingRecord(
            dataset=self.dataset,
            request_path=self.request_path,
            base_url=self._api_base_url(hook),
            output_uri=self.output_uri,
            output_dir=self._asset_suffix() or self.dataset,
            window={
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
                "days": window.days,
            },
            parameters=parameters,
            as_of=as_of,
            requests=hook.request_count,
            data_format=self.format,
            source=self._lineage_source(as_of),
            columns=tuple(landing.columns),
            parquet_schema=next((p.schema for p, _, _ in staged if p.schema), None),
            partitions=[
                lineage.PartitionRecord(
                    p.key, p.status, p.row_count, p.size, p.sha256, p.previous_sha256, p.data_file
                )
                for p, _, _ in staged
            ],
        )
        if landing.items:
            newest = max(landing.items, key=lambda item: item[2].end)[0]
            context["ti"].xcom_push(
                key=PARTITION_XCOM_KEY, value=self.output_uri.rstrip("/") + "/" + newest.key + "/"
            )

    def _api_base_url(self, hook: OpenRouterHook) -> str:
        """The base URL of the API client that fetched the data (no request)."""
        return hook.get_conn().base_url

    def _lineage_source(self, as_of: str) -> lineage.SourceInfo:
        """Citation, licence, caveats and public page of the dataset, for the lineage facets."""
        from airflow_provider_openrouter.runtime import lineage

        return lineage.public_dataset_source(self.request_path, as_of)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage for the finished run, from what it landed (no request): the OpenRouter endpoint
        read (window and parameters in facet ``openrouter_request``), the lake dataset written (row and
        byte counts, schema, citation and licence, partitions; ``lifecycleStateChange`` OVERWRITE when a
        partition's earlier data was replaced). None when the OpenLineage provider is not installed."""
        from airflow_provider_openrouter.runtime import lineage

        return lineage.operator_lineage(getattr(self, "_lineage_record", None))


def event_partition_keys(
    context: Context, staged: Sequence[tuple[Any, Any, Window | None]]
) -> list[str]:
    """The partition keys of a partitioned run's asset event: one ``YYYY-MM-DD`` per one-day partition
    written (rankings-daily: every UTC day of the window), the run's own partition key for a partition
    spanning several days (app-rankings: the window). None in a run without partition: Airflow does
    not trigger non-partitioned asset consumers on a keyed event, so interval DAGs stay as they were."""
    run_key = context.get("partition_key")
    if not is_partitioned_run(context):
        return []
    keys: list[str] = []
    for _, _, days in staged:
        key = days.start.isoformat() if days is not None and days.days == 1 else run_key
        if key and key not in keys:
            keys.append(key)
    return sorted(keys)


def check_uri(uri: str, task: str) -> None:
    if "://" not in uri:
        raise InvalidParameterError(
            f"Task {task!r}: output_uri={uri!r} has no scheme; use file:///absolute/path for local files or "
            "s3://bucket/prefix (with output_conn_id naming an aws connection)."
        )
