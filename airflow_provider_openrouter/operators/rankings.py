"""Operators that land each DAG run's window of OpenRouter's datasets in any object store.

* :class:`RankingsDailyOperator`: one partition per UTC day, ``rankings_daily/date=YYYY-MM-DD``.
* :class:`AppRankingsOperator`: one partition per run window,
  ``app_rankings/sort=.../category=...|all/subcategory=...|all/window=START_END``.

The window is the run's data interval read by :func:`~airflow_provider_openrouter.windows.intervals.days_for_interval`
(``[start, end)`` at 00:00 UTC covers ``start.date() .. end.date() - 1``; a zero-length interval,
as Airflow 3's plain ``schedule="@daily"`` gives, covers the UTC day ending at the logical date),
or ``window_start``/``window_end`` (inclusive UTC days, templated, e.g. to refetch recent weeks).
Every response is fetched and validated, and every partition staged, before the first partition
is committed (see :mod:`airflow_provider_openrouter.lake.storage` for the commit protocol and the
rule readers must follow). Reruns rewrite exactly the run's partitions; identical data is not touched.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_openrouter.api import endpoints
from airflow_provider_openrouter.api.answers import parse_timestamp
from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily
from airflow_provider_openrouter.api.datasets.app_rankings import validate_app_params
from airflow_provider_openrouter.exceptions import (
    BadRequestError,
    InvalidParameterError,
    InvalidResponseError,
    WindowNotCompleteError,
)
from airflow_provider_openrouter.hooks.openrouter import OpenRouterHook
from airflow_provider_openrouter.lake import manifest as manifests
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.lake.chunk_cache import (
    DEFAULT_FRESH_FOR,
    DEFAULT_RESTATEMENT_DAYS,
    RankingsChunkCache,
    split_by_year,
)
from airflow_provider_openrouter.lake.manifest import APP_RANKINGS, RANKINGS_DAILY
from airflow_provider_openrouter.operators.base import (
    Fetch,
    Landing,
    OpenRouterDatasetOperator,
    templated,
)
from airflow_provider_openrouter.runtime import as_of_memory
from airflow_provider_openrouter.windows.intervals import (
    DATASET_FLOOR,
    MAX_WINDOW_DAYS,
    ONE_DAY,
    Window,
    chunks,
    day_complete_at,
    last_complete_day,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_openrouter.api.answers import DatasetMeta
    from airflow_provider_openrouter.api.datasets.rankings_daily import RankingsDaily

__all__ = ["AppRankingsOperator", "RankingsDailyOperator"]

#: An app-rankings window landed less than this long ago is not re-checked by the lookback.
APP_RECHECK_AFTER = timedelta(hours=1)


def _manifest_as_of(manifest: Mapping[str, Any] | None) -> datetime | None:
    """The ``meta.as_of`` a landed day's data comes from (None if unreadable: re-verify it)."""
    try:
        return parse_timestamp(str(manifest["meta"]["as_of"]), field="meta.as_of")  # type: ignore[index]
    except (KeyError, TypeError, InvalidResponseError):
        return None


class RankingsDailyOperator(OpenRouterDatasetOperator):
    """Land the run's UTC days of ``/datasets/rankings-daily``: top-50 models per day plus ``other``.

    Writes ``{output_uri}/rankings_daily/date=YYYY-MM-DD/data.jsonl`` (or ``data.parquet``) and its
    ``_manifest.json`` for every day of the window. Emits an event on
    ``Asset(f"{output_uri}/rankings_daily")`` with ``{window, as_of, row_count}``; returns a small
    summary (XCom).

    Where the rows come from, cheapest first:

    1. the upstream :class:`~airflow_provider_openrouter.sensors.as_of.OpenRouterAsOfSensor`'s probe,
       when the run is that one most recent day (the steady daily case: no request at all);
    2. the chunk cache under ``{output_uri}/_cache/rankings_daily`` (``coalesce=True``): one request
       fetches a whole calendar year, shared by every run it covers, so a backfill of the full
       history costs about one request per year (see :mod:`airflow_provider_openrouter.lake.chunk_cache`);
    3. with ``coalesce=False``: one request per window of at most 366 days.

    Data files are identical whichever way the rows came. What the fetch saw is remembered for the
    sensors (``as_of`` memory), so their later runs cost nothing. When the daily quota is spent the
    task defers until it renews instead of failing (``defer_on_rate_limit``).

    :param output_uri: any ``ObjectStoragePath`` URL (``file:///...``, ``s3://bucket/prefix``, ...). Templated.
    :param output_conn_id: the connection of that store (None for local files). Templated.
    :param openrouter_conn_id: the ``openrouter`` connection holding the API key.
    :param format: ``jsonl`` (default) or ``parquet`` (extra ``parquet``).
    :param window_start: with ``window_end``, inclusive UTC days overriding the data interval. Templated.
    :param restatement_days: a day's numbers are final only if the answer's ``meta.as_of`` (the API's
        clock) is at least this many days after the day ended (OpenRouter revises recent days;
        default 7). Every manifest says so (``final``, ``final_after``); a cached day younger than
        that is refetched unless the cache entry is less than ``cache_fresh_for`` old.
    :param lookback_days: also re-verify the already-landed days among this many days before the
        run's window whose manifest is not ``final`` (default ``restatement_days``; 0 turns it off).
        It rides on the run's own single request (one window from the first of those days to the
        run's last day: no extra request; the sensor's probe holds them). Days whose data changed are
        rewritten (manifest ``previous_sha256``, ``restated_at``; the asset event's extra lists them
        in ``restated_days``); unchanged data files are not touched (a day turning final gets a new
        manifest only). The lookback never creates partitions.
    :param coalesce: use the chunk cache (default True).
    :param cache_fresh_for: how long a fetched chunk also serves its young days (default one hour, so
        the runs of one backfill share it; ``timedelta(0)`` refetches young days every time).
    :param defer_on_rate_limit: defer until ``retry_at`` on quota exhaustion or persistent 429s (default True).
    """

    dataset = RANKINGS_DAILY
    request_path = rankings_daily.PATH
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        restatement_days: int = DEFAULT_RESTATEMENT_DAYS,
        lookback_days: int | None = None,
        coalesce: bool = True,
        cache_fresh_for: timedelta = DEFAULT_FRESH_FOR,
        **kwargs: Any,
    ) -> None:
        for name, value in (
            ("restatement_days", restatement_days),
            ("lookback_days", lookback_days),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidParameterError(
                    f"Task {kwargs.get('task_id', '?')!r}: {name}={value!r} must be a whole number of days >= 0."
                )
        if lookback_days is not None and lookback_days >= MAX_WINDOW_DAYS:
            raise InvalidParameterError(
                f"Task {kwargs.get('task_id', '?')!r}: lookback_days={lookback_days} must be below {MAX_WINDOW_DAYS}: "
                "the lookback rides on the run's one request, which covers at most that many days."
            )
        self.restatement_days = restatement_days
        self.lookback_days = restatement_days if lookback_days is None else lookback_days
        self.coalesce = coalesce
        self.cache_fresh_for = cache_fresh_for
        super().__init__(**kwargs)

    def _asset_suffix(self) -> str | None:
        return "rankings_daily"

    def land(self, context: Context) -> dict[str, Any]:
        window = self._window_or_skip(context)
        base = self._base()
        hook = OpenRouterHook(self.openrouter_conn_id)
        landed = self._landed_manifests(base, window)
        verify = self._days_to_verify(window, landed)
        pieces = split_by_year(window) if self.coalesce else chunks(window)
        self.log.info(
            "Landing OpenRouter rankings-daily for %s (%d day(s), %d piece(s)) via connection %r%s; "
            "re-verifying %d landed non-final day(s) of the %d-day lookback.",
            window,
            window.days,
            len(pieces),
            self.openrouter_conn_id,
            f", coalesced through the chunk cache (restatement_days={self.restatement_days})"
            if self.coalesce
            else "",
            len(verify),
            self.lookback_days,
        )
        with Landing(self, base) as landing:
            for index, piece in enumerate(reversed(pieces)):
                # the lookback rides on the request of the piece holding the window's first day
                extra_days = verify if index == len(pieces) - 1 else []
                needed = Window(extra_days[0], piece.end) if extra_days else piece
                answers = self._answers_for(context, hook, base, needed)
                by_day = self._rows_by_day(answers, needed)
                missing = [day for day in piece.iter_days() if day not in by_day]
                if missing:
                    result = answers[0][0]
                    raise InvalidResponseError(
                        f"Invalid response from OpenRouter: no rows for {', '.join(map(str, missing[:5]))}"
                        f"{' ...' if len(missing) > 5 else ''} inside the answered window {result.meta.window}. Nothing was written.",
                        field="date",
                    )
                del answers
                for day in piece.iter_days():
                    self._stage_day(landing, day, *by_day.pop(day), landed.get(day), lookback=False)
                for day in extra_days:
                    if day not in by_day:
                        self.log.warning(
                            "The answer does not hold %s: it is not re-verified by this run.", day
                        )
                        continue
                    rows, meta, fetch = by_day.pop(day)
                    seen = _manifest_as_of(landed[day])
                    if seen is not None and meta.as_of <= seen:
                        continue  # the same snapshot the day was landed from: nothing new to learn
                    self._stage_day(landing, day, rows, meta, fetch, landed[day], lookback=True)
            landing.commit(window)
        if landing.lookback:
            self.log.info(
                "Lookback: re-verified %d day(s), %d restated upstream (rewritten), %d now final (manifest only).",
                len(landing.lookback),
                sum(1 for p, _, _ in landing.lookback if p.status == "restated"),
                sum(
                    1
                    for p, _, _ in landing.lookback
                    if p.status == "unchanged" and p.key in landing.refresh
                ),
            )
        return self._report(context, window, landing, hook)

    # ------------------------------------------------------------ lookback and finality
    def _landed_manifests(self, base: Any, window: Window) -> dict[date, dict[str, Any] | None]:
        """The current manifests of the run's days and of its lookback days (None: not landed)."""
        first = max(window.start - timedelta(days=self.lookback_days), DATASET_FLOOR)
        out: dict[date, dict[str, Any] | None] = {}
        for day in Window(first, window.end).iter_days():
            directory = storage.join(base, rankings_daily.partition_key(day))
            raw = storage.read_bytes(directory / storage.MANIFEST_NAME)
            try:
                out[day] = manifests.loads(raw) if raw is not None else None
            except manifests.ManifestError:
                out[day] = {}  # damaged: re-verified (and repaired) like a non-final day
        return out

    def _days_to_verify(
        self, window: Window, landed: Mapping[date, dict[str, Any] | None]
    ) -> list[date]:
        """Lookback days already landed whose manifest does not say ``final: true``, oldest first,
        kept within one request's reach of the window's first piece."""
        first_piece_end = (
            min(window.end, date(window.start.year, 12, 31))
            if self.coalesce
            else chunks(window)[0].end
        )
        return [
            day
            for day in sorted(landed)
            if day < window.start
            and landed[day] is not None
            and landed[day].get("final") is not True  # type: ignore[union-attr]
            and (first_piece_end - day).days < MAX_WINDOW_DAYS
        ]

    def finality(self, day: date, as_of: datetime) -> dict[str, Any]:
        """Manifest keys saying whether ``day``'s numbers, as of ``as_of`` (the API's clock), are final."""
        final_after = day_complete_at(day, timedelta(days=self.restatement_days))
        return {
            "final": as_of >= final_after,
            "final_after": final_after.isoformat().replace("+00:00", "Z"),
            "restatement_days": self.restatement_days,
        }

    def _stage_day(
        self,
        landing: Landing,
        day: date,
        rows: list[Any],
        meta: DatasetMeta,
        fetch: Fetch,
        current: dict[str, Any] | None,
        *,
        lookback: bool,
    ) -> None:
        extra = self.finality(day, meta.as_of)
        if current and current.get("final") is True and not extra["final"]:
            extra["final"] = (
                True  # never downgrade: a final day was proven by a later snapshot already
            )
        now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        if current and current.get("restated_at"):
            extra["restated_at"] = current["restated_at"]
        key = rankings_daily.partition_key(day)
        partition = landing.stage(
            key,
            [row.to_record() for row in rows],
            rankings_daily.COLUMNS,
            fetch,
            Window(day, day),
            manifest_extra=extra,
            lookback=lookback,
            refresh=bool(current) and current.get("final") != extra["final"],  # type: ignore[union-attr]
        )
        if partition.status == "restated":
            landing.manifest_extra[key] = {**extra, "restated_at": now}

    # ------------------------------------------------------------ where the rows come from
    def _rows_by_day(
        self, answers: list[tuple[RankingsDaily, Fetch]], needed: Window
    ) -> dict[date, tuple[list[Any], DatasetMeta, Fetch]]:
        out: dict[date, tuple[list[Any], DatasetMeta, Fetch]] = {}
        for result, fetch in answers:
            for day, rows in itertools.groupby(result.rows, key=lambda row: row.date):
                if needed.start <= day <= needed.end and day not in out:
                    out[day] = (list(rows), result.meta, fetch)
        return out

    def _answers_for(
        self, context: Context, hook: OpenRouterHook, base: Any, needed: Window
    ) -> list[tuple[RankingsDaily, Fetch]]:
        """Validated answers covering ``needed`` and where they came from (probe, cache or request):
        one request at most, unless ``needed`` spans two years and both chunks must be fetched."""
        from airflow_provider_openrouter.runtime.probe import reusable_probe

        probe = reusable_probe(context, needed, self.openrouter_conn_id)
        if probe is not None and (
            not self.coalesce or needed.end >= last_complete_day(probe.meta.as_of) - ONE_DAY
        ):
            self.log.info(
                "Reusing the as_of sensor's probe for %s (as_of %s): no request.",
                needed,
                probe.meta.as_of.isoformat(),
            )
            return [
                (
                    probe,
                    Fetch(
                        probe.meta.window,
                        dict(probe.meta.raw),
                        (endpoints.window_params(probe.requested),),
                        datetime.now(timezone.utc),
                    ),
                )
            ]
        if not self.coalesce:
            return [self._direct(hook, needed)]
        cache = RankingsChunkCache(
            base, restatement_days=self.restatement_days, fresh_for=self.cache_fresh_for
        )
        parts = split_by_year(needed)
        cached = [cache.lookup(part) for part in parts]
        if (
            len(parts) > 1
            and any(entry is None for entry in cached)
            and needed.days <= MAX_WINDOW_DAYS
        ):
            # the lookback reaches into last year: one window across 1 January, not two year chunks
            return [self._direct(hook, needed)]
        out = []
        for part, entry in zip(parts, cached):
            fetched = False
            if entry is None:
                chunk = Window(
                    max(date(part.start.year, 1, 1), DATASET_FLOOR), date(part.start.year, 12, 31)
                )
                entry, fetched = cache.get_or_fetch(
                    part, functools.partial(self._request, hook, chunk, part)
                )
            result = entry.result
            self.log.info(
                "%s %s for %s: chunk %s, as_of %s.",
                "Fetched" if fetched else "Read the cached",
                entry.name,
                part,
                result.meta.window,
                result.meta.as_of.isoformat(),
            )
            self._check_covers(result.meta, part)
            self._remember(hook, result)
            out.append(
                (
                    result,
                    Fetch(
                        result.meta.window,
                        dict(result.meta.raw),
                        (endpoints.window_params(result.requested),),
                        entry.fetched_at,
                    ),
                )
            )
        return out

    def _direct(self, hook: OpenRouterHook, needed: Window) -> tuple[RankingsDaily, Fetch]:
        result = self._request(hook, needed, needed)
        self._check_answer(result.meta, needed)
        self._remember(hook, result)
        return result, Fetch(
            needed,
            dict(result.meta.raw),
            (endpoints.window_params(needed),),
            datetime.now(timezone.utc),
        )

    def _request(self, hook: OpenRouterHook, asked: Window, needed: Window) -> RankingsDaily:
        try:
            return hook.get_rankings_daily(asked.start, asked.end)
        except BadRequestError as exc:
            raise self._translate_bad_request(exc, needed) from exc

    def _check_covers(self, meta: DatasetMeta, needed: Window) -> None:
        """A chunk answer must hold every day the run needs (its end may be clamped beyond them)."""
        if meta.end_date < needed.end:
            raise WindowNotCompleteError(
                f"OpenRouter's rankings-daily data ends at {meta.end_date} (as of {meta.as_of.isoformat()}), so "
                f"{needed} is not complete yet. Nothing was written. Retry after {needed.end} is complete "
                "(OpenRouterAsOfSensor waits for it)."
            )
        if meta.start_date > needed.start:
            raise InvalidResponseError(
                f"Invalid response from OpenRouter: the answer starts at {meta.start_date}, after {needed.start}. Nothing was written.",
                field="meta",
            )

    def _remember(self, hook: OpenRouterHook, result: RankingsDaily) -> None:
        """Tell the sensors what this fetch proved (best effort: a lost update costs one probe later)."""
        as_of_memory.remember(
            self.openrouter_conn_id,
            as_of_memory.SeenAsOf(
                result.meta.as_of, result.meta.end_date, hook.get_conn().base_url
            ),
        )


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
    :param lookback_days: also re-check the already-landed, non-final windows of the same length that
        end within this many days before the run's window (default 0: off). App rankings are
        aggregates over their window, so **each re-checked window costs its own requests** (one per
        page of 100 apps): with a daily schedule, ``lookback_days=7`` and ``max_apps<=100`` a run
        spends up to 8 requests instead of 1 (the planner counts them). A window whose manifest was
        written less than an hour ago (the same backfill) is not re-checked.
    :param restatement_days: a window's numbers are ``final`` once the answer's ``as_of`` is this many
        days after the window ended (default 7).
    Other parameters as :class:`RankingsDailyOperator`.
    """

    template_fields: Sequence[str] = (
        *OpenRouterDatasetOperator.template_fields,
        "sort",
        "category",
        "subcategory",
    )
    dataset = APP_RANKINGS
    request_path = app_rankings.PATH
    ui_color = "#fef3e8"

    def __init__(
        self,
        *,
        output_uri: str,
        sort: str = "popular",
        category: str | None = None,
        subcategory: str | None = None,
        max_apps: int = 50,
        lookback_days: int = 0,
        restatement_days: int = DEFAULT_RESTATEMENT_DAYS,
        **kwargs: Any,
    ) -> None:
        for name, value in (
            ("lookback_days", lookback_days),
            ("restatement_days", restatement_days),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParameterError(
                    f"Task {kwargs.get('task_id', '?')!r}: {name}={value!r} must be a whole number of days >= 0."
                )
        self.lookback_days, self.restatement_days = lookback_days, restatement_days
        self.sort, self.category, self.subcategory, self.max_apps = (
            sort,
            category,
            subcategory,
            max_apps,
        )
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

    def land(self, context: Context) -> dict[str, Any]:
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
            window,
            self.sort,
            category or "all",
            subcategory or "all",
            self.max_apps,
            self.openrouter_conn_id,
        )
        recheck = self._windows_to_recheck(base, window, category, subcategory)
        if recheck:
            self.log.info(
                "Lookback: re-checking %d landed non-final window(s) (%s): one request per page each.",
                len(recheck),
                ", ".join(str(w) for w, _ in recheck),
            )
        with Landing(self, base) as landing:
            for days, current in [(window, None), *recheck]:
                try:
                    result = hook.get_app_rankings(
                        days.start, days.end, self.sort, category, subcategory, self.max_apps
                    )
                except BadRequestError as exc:
                    raise self._translate_bad_request(exc, days) from exc
                self._check_answer(result.meta, days)
                if result.capped:
                    self.log.warning(
                        "Reached the API's ceiling of 200 apps; apps ranked lower are not reachable."
                    )
                fetch = Fetch(
                    days, dict(result.meta.raw), tuple(result.requests), datetime.now(timezone.utc)
                )
                key = app_rankings.partition_key(self.sort, category, subcategory, days)
                final_after = day_complete_at(days.end, timedelta(days=self.restatement_days))
                extra: dict[str, Any] = {
                    "app_query": {
                        "sort": self.sort,
                        "category": category,
                        "subcategory": subcategory,
                        "max_apps": self.max_apps,
                    },
                    "capped": result.capped,
                    "final": result.meta.as_of >= final_after,
                    "final_after": final_after.isoformat().replace("+00:00", "Z"),
                    "restatement_days": self.restatement_days,
                }
                if current and current.get("restated_at"):
                    extra["restated_at"] = current["restated_at"]
                partition = landing.stage(
                    key,
                    [row.to_record() for row in result.rows],
                    app_rankings.COLUMNS,
                    fetch,
                    days,
                    manifest_extra=extra,
                    lookback=current is not None,
                    refresh=current is not None and current.get("final") != extra["final"],
                )
                if partition.status == "restated":
                    landing.manifest_extra[key] = {
                        **extra,
                        "restated_at": datetime.now(timezone.utc)
                        .isoformat()
                        .replace("+00:00", "Z"),
                    }
            landing.commit(window)
        return self._report(context, window, landing, hook)

    def _windows_to_recheck(
        self, base: Any, window: Window, category: str | None, subcategory: str | None
    ) -> list[tuple[Window, dict[str, Any]]]:
        """Landed non-final windows of the run's length ending within ``lookback_days`` before it."""
        out: list[tuple[Window, dict[str, Any]]] = []
        step = timedelta(days=window.days)
        previous = window
        while self.lookback_days:
            if previous.start - step < DATASET_FLOOR:
                break
            previous = Window(previous.start - step, previous.end - step)
            if previous.end < window.start - timedelta(days=self.lookback_days):
                break
            key = app_rankings.partition_key(self.sort, category, subcategory, previous)
            raw = storage.read_bytes(storage.join(base, key) / storage.MANIFEST_NAME)
            try:
                current = manifests.loads(raw) if raw is not None else None
            except manifests.ManifestError:
                current = {}
            if current is None or current.get("final") is True:
                continue
            try:
                fetched_at = datetime.fromisoformat(
                    str(current.get("fetched_at")).replace("Z", "+00:00")
                )
            except ValueError:
                fetched_at = None
            if (
                fetched_at is not None
                and datetime.now(timezone.utc) - fetched_at < APP_RECHECK_AFTER
            ):
                continue  # written by this backfill a moment ago: nothing new to learn yet
            out.append((previous, current))
        return out
