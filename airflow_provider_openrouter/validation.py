"""API JSON to typed, exact rows, with every integrity check the datasets promise.

Pure functions: a response that breaks a rule raises :class:`InvalidResponseError` naming the
field and the row, before anything downstream can write it. Unknown extra fields are tolerated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Mapping, Sequence

from airflow_provider_openrouter.catalog import OTHER_PERMASLUG, TOP_MODELS_PER_DAY
from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.windows import Window


@dataclass(frozen=True)
class DatasetMeta:
    """The ``meta`` block of a dataset response, typed; ``raw`` keeps it verbatim."""

    as_of: datetime
    start_date: date
    end_date: date
    version: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def window(self) -> Window:
        return Window(self.start_date, self.end_date)


@dataclass(frozen=True, slots=True)
class RankingsDailyRow:
    """One model's token total on one UTC day (``other`` sums the models outside the top 50)."""

    date: date
    model_permaslug: str
    total_tokens: int

    def to_record(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "model_permaslug": self.model_permaslug, "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class RankingsDaily:
    """A validated rankings-daily answer and the window that was asked for."""

    meta: DatasetMeta
    rows: tuple[RankingsDailyRow, ...]
    requested: Window

    @property
    def clamped(self) -> bool:
        """True when the API answered a different window than the one requested."""
        return self.meta.window != Window(self.requested.start, self.requested.end)

    def rows_for(self, day: date) -> tuple[RankingsDailyRow, ...]:
        return tuple(row for row in self.rows if row.date == day)


@dataclass(frozen=True, slots=True)
class AppRankingRow:
    """One app's position and totals inside a window."""

    app_id: int
    app_name: str
    rank: int
    total_requests: int
    total_tokens: int

    def to_record(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "app_name": self.app_name,
            "rank": self.rank,
            "total_requests": self.total_requests,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class AppRankings:
    """Validated app rankings, all pages joined; ``capped`` means the 200-app ceiling was hit."""

    meta: DatasetMeta
    rows: tuple[AppRankingRow, ...]
    requested: Window
    capped: bool
    requests: tuple[Mapping[str, Any], ...] = ()

    @property
    def clamped(self) -> bool:
        return self.meta.window != Window(self.requested.start, self.requested.end)


def invalid_response(
    message: str, *, field: str | None = None, row: int | None = None, what: str = "response", api: str = "API"
) -> InvalidResponseError:
    """The :class:`InvalidResponseError` for a broken answer, naming the row and field when known."""
    where = f" (row {row}, field {field!r})" if row is not None else (f" (field {field!r})" if field else "")
    return InvalidResponseError(
        f"Invalid {what} from OpenRouter{where}: {message}. Nothing was written; "
        f"if this persists the {api} may have changed its schema.",
        field=field,
        row=row,
    )


_fail = invalid_response


def parse_count(value: Any, *, field: str, row: int | None = None) -> int:
    """An exact non-negative integer from a digits-only string or a JSON integer, never via float."""
    if isinstance(value, str):
        if value and value.isascii() and value.isdigit():
            return int(value)
        raise _fail(f"{value!r} is not a non-negative decimal integer string", field=field, row=row)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise _fail(f"{value!r} ({type(value).__name__}) is not an exact non-negative integer", field=field, row=row)


def _parse_date(value: Any, *, field: str, row: int | None = None) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(f"{value!r} is not a YYYY-MM-DD date", field=field, row=row)


def _parse_timestamp(value: Any, *, field: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(timezone.utc)
    raise _fail(f"{value!r} is not an ISO-8601 timestamp with a timezone", field=field)


def _require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *, where: str, row: int | None = None) -> Any:
    if key not in obj:
        raise _fail(f"missing required field {key!r} in {where}", field=key, row=row)
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _fail(f"{value!r} has type {type(value).__name__}", field=key, row=row)
    return value


def _envelope(payload: Any) -> tuple[list[Any], Mapping[str, Any]]:
    if not isinstance(payload, Mapping):
        raise _fail(f"expected a JSON object, got {type(payload).__name__}")
    data = _require(payload, "data", list, where="the response")
    meta = _require(payload, "meta", Mapping, where="the response")
    return data, meta


def parse_meta(meta: Mapping[str, Any]) -> DatasetMeta:
    """Type the ``meta`` block; its window must be ordered."""
    as_of = _parse_timestamp(_require(meta, "as_of", str, where="meta"), field="meta.as_of")
    start = _parse_date(_require(meta, "start_date", str, where="meta"), field="meta.start_date")
    end = _parse_date(_require(meta, "end_date", str, where="meta"), field="meta.end_date")
    version = _require(meta, "version", str, where="meta")
    if start > end:
        raise _fail(f"meta window {start}..{end} ends before it starts", field="meta.end_date")
    return DatasetMeta(as_of=as_of, start_date=start, end_date=end, version=version, raw=dict(meta))


def parse_rankings_daily(payload: Any, requested: Window) -> RankingsDaily:
    """Validate a rankings-daily response.

    Checks types, digits-only counts, rows inside ``meta``'s window, dates ascending, no duplicate
    (date, model), at most 50 models then ``other`` last within each date, tokens descending with
    ties by permaslug.
    """
    data, raw_meta = _envelope(payload)
    meta = parse_meta(raw_meta)
    rows: list[RankingsDailyRow] = []
    seen: set[str] = set()
    current: date | None = None
    models_today = 0
    other_today = False
    previous: RankingsDailyRow | None = None
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise _fail(f"row is {type(item).__name__}, not an object", row=index)
        day = _parse_date(_require(item, "date", str, where="a row", row=index), field="date", row=index)
        slug = _require(item, "model_permaslug", str, where="a row", row=index)
        if not slug:
            raise _fail("empty model_permaslug", field="model_permaslug", row=index)
        tokens = parse_count(_require(item, "total_tokens", (str, int), where="a row", row=index), field="total_tokens", row=index)
        if not meta.start_date <= day <= meta.end_date:
            raise _fail(f"date {day} lies outside meta's window {meta.window}", field="date", row=index)
        if current is None or day != current:
            if current is not None and day < current:
                raise _fail(f"date {day} comes after {current}; rows must be sorted by date", field="date", row=index)
            current, models_today, other_today, previous, seen = day, 0, False, None, set()
        if slug in seen:
            raise _fail(f"duplicate row for ({day}, {slug})", field="model_permaslug", row=index)
        seen.add(slug)
        if other_today:
            raise _fail(f"row for {slug!r} follows the 'other' row of {day}; 'other' must be last", field="model_permaslug", row=index)
        row = RankingsDailyRow(day, slug, tokens)
        if slug == OTHER_PERMASLUG:
            other_today = True
        else:
            models_today += 1
            if models_today > TOP_MODELS_PER_DAY:
                raise _fail(f"more than {TOP_MODELS_PER_DAY} models on {day}", field="model_permaslug", row=index)
            if previous is not None and (-previous.total_tokens, previous.model_permaslug) > (-tokens, slug):
                raise _fail(
                    f"{slug!r} ({tokens}) is out of order after {previous.model_permaslug!r} ({previous.total_tokens}); "
                    "rows must be sorted by tokens descending, ties by permaslug",
                    field="total_tokens",
                    row=index,
                )
            previous = row
        rows.append(row)
    return RankingsDaily(meta=meta, rows=tuple(rows), requested=requested)


def parse_app_rankings_page(payload: Any, offset: int) -> tuple[DatasetMeta, list[AppRankingRow]]:
    """Validate one app-rankings page: ranks must run ``offset + 1, offset + 2, ...`` without gaps."""
    data, raw_meta = _envelope(payload)
    meta = parse_meta(raw_meta)
    rows: list[AppRankingRow] = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise _fail(f"row is {type(item).__name__}, not an object", row=offset + index)
        where = offset + index
        app_id = _require(item, "app_id", int, where="a row", row=where)
        name = _require(item, "app_name", str, where="a row", row=where)
        rank = _require(item, "rank", int, where="a row", row=where)
        requests = parse_count(_require(item, "total_requests", (int, str), where="a row", row=where), field="total_requests", row=where)
        tokens = parse_count(_require(item, "total_tokens", (int, str), where="a row", row=where), field="total_tokens", row=where)
        if rank != offset + index + 1:
            raise _fail(f"rank {rank} where {offset + index + 1} was expected; ranks are absolute across pages", field="rank", row=where)
        rows.append(AppRankingRow(app_id, name, rank, requests, tokens))
    return meta, rows


def join_app_pages(
    pages: Sequence[tuple[DatasetMeta, list[AppRankingRow]]],
    requested: Window,
    capped: bool,
    requests: Sequence[Mapping[str, Any]] = (),
) -> AppRankings:
    """Join validated pages; their windows must agree and no app may appear twice."""
    if not pages:
        raise ValueError("no pages to join")
    meta = pages[0][0]
    rows: list[AppRankingRow] = []
    seen: set[int] = set()
    for page_meta, page_rows in pages:
        if page_meta.window != meta.window:
            raise _fail(f"pages answered different windows ({meta.window} and {page_meta.window})", field="meta")
        for row in page_rows:
            if row.app_id in seen:
                raise _fail(f"app {row.app_id} appears twice across pages", field="app_id", row=row.rank - 1)
            seen.add(row.app_id)
            rows.append(row)
    return AppRankings(meta=meta, rows=tuple(rows), requested=requested, capped=capped, requests=tuple(requests))
