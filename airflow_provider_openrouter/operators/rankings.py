"""Operators that land each DAG run's window of OpenRouter's datasets in any object store.

* :class:`RankingsDailyOperator`: one partition per UTC day, ``rankings_daily/date=YYYY-MM-DD``.
* :class:`AppRankingsOperator`: one partition per run window,
  ``app_rankings/sort=.../category=...|all/subcategory=...|all/window=START_END``.

The window is the run's data interval read by :func:`~airflow_provider_openrouter.windows.days_for_interval`
(``[start, end)`` at 00:00 UTC covers ``start.date() .. end.date() - 1``; a zero-length interval,
as Airflow 3's plain ``schedule="@daily"`` gives, covers the UTC day ending at the logical date),
or ``window_start``/``window_end`` (inclusive UTC days, templated, e.g. to refetch recent weeks).
Every response is fetched and validated, and every partition staged, before the first partition
is committed (see :mod:`airflow_provider_openrouter.storage` for the commit protocol and the
rule readers must follow). Reruns rewrite exactly the run's partitions; identical data is not touched.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

from airflow_provider_openrouter import endpoints, storage
from airflow_provider_openrouter.catalog import MAX_WINDOW_DAYS, validate_app_params
from airflow_provider_openrouter.exceptions import BadRequestError, InvalidParameterError, InvalidResponseError
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.manifest import APP_RANKINGS, RANKINGS_DAILY
from airflow_provider_openrouter.operators.base import Fetch, Landing, OpenRouterDatasetOperator, templated
from airflow_provider_openrouter.windows import Window, chunks

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["AppRankingsOperator", "RankingsDailyOperator"]


class RankingsDailyOperator(OpenRouterDatasetOperator):
    """Land the run's UTC days of ``/datasets/rankings-daily``: top-50 models per day plus ``other``.

    Writes ``{output_uri}/rankings_daily/date=YYYY-MM-DD/data.jsonl`` (or ``data.parquet``) and its
    ``_manifest.json`` for every day of the window, fetching windows over 366 days in several
    requests (newest first, so an incomplete last day fails on the first request). Emits an event
    on ``Asset(f"{output_uri}/rankings_daily")`` with ``{window, as_of, row_count}``; returns a
    small summary (XCom).

    :param output_uri: any ``ObjectStoragePath`` URL (``file:///...``, ``s3://bucket/prefix``, ...). Templated.
    :param output_conn_id: the connection of that store (None for local files). Templated.
    :param openrouter_conn_id: the ``openrouter`` connection holding the API key.
    :param format: ``jsonl`` (default) or ``parquet`` (extra ``parquet``).
    :param window_start: with ``window_end``, inclusive UTC days overriding the data interval. Templated.
    """

    dataset = RANKINGS_DAILY
    request_path = endpoints.RANKINGS_DAILY_PATH
    ui_color = "#e8f0fe"

    def _asset_suffix(self) -> str | None:
        return "rankings_daily"

    def execute(self, context: Context) -> dict[str, Any]:
        window = self._window_or_skip(context)
        base = self._base()
        hook = OpenRouterHook(self.openrouter_conn_id)
        pieces = chunks(window)
        self.log.info(
            "Requesting OpenRouter rankings-daily for %s (%d day(s)) in %d request(s) of at most %d days via connection %r.",
            window, window.days, len(pieces), MAX_WINDOW_DAYS, self.openrouter_conn_id,
        )
        with Landing(self, base) as landing:
            for piece in reversed(pieces):
                try:
                    result = hook.get_rankings_daily(piece.start, piece.end)
                except BadRequestError as exc:
                    raise self._translate_bad_request(exc, piece) from exc
                self._check_answer(result.meta, piece)
                fetch = Fetch(piece, dict(result.meta.raw), (endpoints.window_params(piece),), datetime.now(timezone.utc))
                by_day = {day: list(rows) for day, rows in itertools.groupby(result.rows, key=lambda row: row.date)}
                missing = [day for day in piece.iter_days() if day not in by_day]
                if missing:
                    raise InvalidResponseError(
                        f"Invalid response from OpenRouter: no rows for {', '.join(map(str, missing[:5]))}"
                        f"{' ...' if len(missing) > 5 else ''} inside the answered window {piece}. Nothing was written.",
                        field="date",
                    )
                del result
                for day in piece.iter_days():
                    records = [row.to_record() for row in by_day.pop(day)]
                    landing.stage(storage.rankings_partition_key(day), records, storage.RANKINGS_COLUMNS, fetch, Window(day, day))
            landing.commit(window)
        return self._report(context, window, landing, hook)


class AppRankingsOperator(OpenRouterDatasetOperator):
    """Land the top apps of the run's window from ``/datasets/app-rankings`` as one partition.

    Writes ``{output_uri}/app_rankings/sort={sort}/category={category|all}/subcategory={subcategory|all}/
    window={start}_{end}/data.jsonl`` and its ``_manifest.json``. Ranks are computed over the whole
    window, so windows longer than 366 days are refused rather than split. ``sort``, ``category``
    and ``subcategory`` are validated when the DAG is parsed (unless templated).

    :param sort: ``popular`` (tokens in the window) or ``trending`` (growth; fewer rows are normal). Templated.
    :param category: coding, creative, productivity, entertainment, or None for all apps. Templated.
    :param subcategory: a marketplace subcategory (must agree with ``category``), or None. Templated.
    :param max_apps: 1-200 apps (pages of 100; the API reaches no further).
    Other parameters as :class:`RankingsDailyOperator`.
    """

    template_fields: Sequence[str] = (*OpenRouterDatasetOperator.template_fields, "sort", "category", "subcategory")
    dataset = APP_RANKINGS
    request_path = endpoints.APP_RANKINGS_PATH
    ui_color = "#fef3e8"

    def __init__(
        self,
        *,
        output_uri: str,
        sort: str = "popular",
        category: str | None = None,
        subcategory: str | None = None,
        max_apps: int = 50,
        **kwargs: Any,
    ) -> None:
        self.sort, self.category, self.subcategory, self.max_apps = sort, category, subcategory, max_apps
        if not any(templated(v) for v in (sort, category, subcategory)):
            try:
                validate_app_params(sort, category, subcategory, max_apps)
            except InvalidParameterError as exc:
                raise InvalidParameterError(f"Task {kwargs.get('task_id', '?')!r}: {exc}") from None
        elif isinstance(max_apps, bool) or not isinstance(max_apps, int):
            validate_app_params("popular", None, None, max_apps)
        super().__init__(output_uri=output_uri, **kwargs)

    def _asset_suffix(self) -> str | None:
        if any(templated(v) for v in (self.sort, self.category, self.subcategory)):
            return "app_rankings"
        return f"app_rankings/sort={self.sort}/category={self.category or 'all'}/subcategory={self.subcategory or 'all'}"

    def execute(self, context: Context) -> dict[str, Any]:
        category, subcategory = self.category or None, self.subcategory or None
        validate_app_params(self.sort, category, subcategory, self.max_apps)
        window = self._window_or_skip(context)
        if window.days > MAX_WINDOW_DAYS:
            raise InvalidParameterError(
                f"The window {window} spans {window.days} days; app rankings rank apps over the whole window and "
                f"one request covers at most {MAX_WINDOW_DAYS} days, so it cannot be split. Use a shorter schedule."
            )
        base = self._base()
        hook = OpenRouterHook(self.openrouter_conn_id)
        self.log.info(
            "Requesting OpenRouter app-rankings for %s: sort=%s category=%s subcategory=%s max_apps=%d via connection %r.",
            window, self.sort, category or "all", subcategory or "all", self.max_apps, self.openrouter_conn_id,
        )
        with Landing(self, base) as landing:
            try:
                result = hook.get_app_rankings(window.start, window.end, self.sort, category, subcategory, self.max_apps)
            except BadRequestError as exc:
                raise self._translate_bad_request(exc, window) from exc
            self._check_answer(result.meta, window)
            if result.capped:
                self.log.warning("Reached the API's ceiling of 200 apps; apps ranked lower are not reachable.")
            fetch = Fetch(window, dict(result.meta.raw), tuple(result.requests), datetime.now(timezone.utc))
            key = storage.app_partition_key(self.sort, category, subcategory, window)
            landing.stage(key, [row.to_record() for row in result.rows], storage.APP_COLUMNS, fetch, window)
            landing.commit(window, extra={
                "app_query": {"sort": self.sort, "category": category, "subcategory": subcategory, "max_apps": self.max_apps},
                "capped": result.capped,
            })
        return self._report(context, window, landing, hook)
