"""The rankings-daily dataset: daily token totals per model (top 50, then ``other``).

Everything about the dataset in one place: its endpoint, its answer's rules, its columns, its
partition layout in the lake and its citation. Pure; the hook sends the requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import compress, count, islice, repeat
from operator import attrgetter, eq, ge, gt, itemgetter, ne
from typing import Any

import msgspec

from airflow_provider_openrouter.api.answers import (
    DatasetMeta,
    decode_wire,
    digit_counts,
    envelope,
    exact_counts,
    fail,
    parse_count,
    parse_date,
    parse_meta,
    require,
    wire_meta,
)
from airflow_provider_openrouter.windows.intervals import Window

#: The dataset's name in manifests and logs.
NAME = "rankings-daily"
PATH = "/datasets/rankings-daily"
#: Where people see the dataset on openrouter.ai.
PUBLIC_PAGE = "https://openrouter.ai/rankings"
CITATION = "Source: OpenRouter (openrouter.ai/rankings), as of {as_of}."

#: The reserved permaslug of the row that sums every model outside the daily top 50.
OTHER_PERMASLUG = "other"

#: Models ranked per day before the ``other`` row.
TOP_MODELS_PER_DAY = 50
#: Column name -> kind ("date", "string", "int"), in file order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("date", "date"),
    ("model_permaslug", "string"),
    ("total_tokens", "int"),
)


class RankingsDailyRow(msgspec.Struct, frozen=True, gc=False):
    """One model's token total on one UTC day (``other`` sums the models outside the top 50).

    Immutable, compared and hashed by value. A msgspec ``Struct`` (built in C, 40 bytes, never
    scanned by the garbage collector) because a year's answer has ~18,700 of them.
    """

    date: date
    model_permaslug: str
    total_tokens: int

    def to_record(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "model_permaslug": self.model_permaslug,
            "total_tokens": self.total_tokens,
        }


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


class _WireRow(msgspec.Struct, gc=False):
    """A row as the API sends it (counts as digit strings); unknown fields are ignored."""

    date: date
    model_permaslug: str
    total_tokens: str


class _Wire(msgspec.Struct, gc=False):
    data: list[_WireRow]
    meta: msgspec.Raw


_WIRE = msgspec.json.Decoder(_Wire)


def decode(body: bytes) -> Any:
    """A rankings-daily answer's bytes as :func:`parse_rankings_daily` reads them fastest.

    The client's decoder for this endpoint (``client.get(PATH, params, decode=decode)``): the
    common shape goes straight into typed wire rows; anything else is plain JSON (see
    :func:`~airflow_provider_openrouter.api.answers.decode_wire`).
    """
    return decode_wire(_WIRE, body)


def parse_rankings_daily(payload: Any, requested: Window) -> RankingsDaily:
    """Validate a rankings-daily response: decoded JSON, or what :func:`decode` made of its bytes.

    Checks types, digits-only counts, rows inside ``meta``'s window, dates ascending, no duplicate
    (date, model), at most 50 models then ``other`` last within each date, tokens descending with
    ties by permaslug.

    One set of rules, three passes. Bytes that :func:`decode` read into wire rows already have
    their types checked, and :func:`_wire_rows` checks the rest column by column; decoded JSON
    goes through :func:`_fast_rows`, the same checks over plain ``dict``/``str``/``int`` values.
    Whenever either finds anything unusual it hands over to :func:`_checked_rows`, row by row,
    which names the row and field of the first broken rule. The fast passes never accept what
    the row-by-row pass rejects.
    """
    if type(payload) is _Wire:
        meta = parse_meta(wire_meta(payload.meta))
        rows = _wire_rows(payload.data, meta)
        if rows is None:
            rows = _checked_rows(list(map(_wire_record, payload.data)), meta)
        return RankingsDaily(meta=meta, rows=rows, requested=requested)
    data, raw_meta = envelope(payload)
    meta = parse_meta(raw_meta)
    rows = _fast_rows(data, meta)
    if rows is None:
        rows = _checked_rows(data, meta)
    return RankingsDaily(meta=meta, rows=rows, requested=requested)


_DATE, _SLUG, _TOKENS = (
    itemgetter("date"),
    itemgetter("model_permaslug"),
    itemgetter("total_tokens"),
)
_WIRE_DATE, _WIRE_SLUG, _WIRE_TOKENS = (
    attrgetter("date"),
    attrgetter("model_permaslug"),
    attrgetter("total_tokens"),
)
_DICT, _STR = {dict}, {str}


def _wire_record(row: _WireRow) -> dict[str, Any]:
    return {
        "date": row.date.isoformat(),
        "model_permaslug": row.model_permaslug,
        "total_tokens": row.total_tokens,
    }


def _wire_rows(data: list[_WireRow], meta: DatasetMeta) -> tuple[RankingsDailyRow, ...] | None:
    """The rows of a valid answer decoded into wire rows (types already checked), or None."""
    if not data:
        return ()
    slugs = list(map(_WIRE_SLUG, data))
    if not all(slugs):
        return None
    counts = digit_counts(list(map(_WIRE_TOKENS, data)))
    if counts is None:
        return None
    dates = list(map(_WIRE_DATE, data))
    if not _days_in_order(dates, slugs, counts, meta, _same_day):
        return None
    return tuple(map(RankingsDailyRow, dates, slugs, counts))


def _fast_rows(data: list[Any], meta: DatasetMeta) -> tuple[RankingsDailyRow, ...] | None:
    """The rows of a valid answer of plain ``dict``/``str``/``int`` values, or None to re-check row by row.

    Column by column and day by day, in C-level loops that allocate no per-row container but
    the row itself (fewer garbage-collector passes over a large answer).
    """
    if not data:
        return ()
    if set(map(type, data)) != _DICT:  # exact types: bool, float, subclasses go row by row
        return None
    try:
        texts, slugs, tokens = (
            list(map(_DATE, data)),
            list(map(_SLUG, data)),
            list(map(_TOKENS, data)),
        )
    except KeyError:
        return None
    if set(map(type, texts)) != _STR or set(map(type, slugs)) != _STR or not all(slugs):
        return None
    counts = exact_counts(tokens)
    if counts is None:
        return None
    days: list[date] = []
    if not _days_in_order(texts, slugs, counts, meta, _iso_day, days):
        return None
    return tuple(map(RankingsDailyRow, days, slugs, counts))


def _same_day(day: date) -> date:
    return day


def _iso_day(text: str) -> date | None:
    """A ``YYYY-MM-DD`` date as :func:`parse_date` reads it, or None."""
    if len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _days_in_order(
    keys: list[Any],
    slugs: list[str],
    counts: list[int],
    meta: DatasetMeta,
    to_date: Callable[[Any], date | None],
    days: list[date] | None = None,
) -> bool:
    """Whether the rows, grouped by their date ``keys`` (one ``to_date`` per day), keep every rule
    across and within days: inside meta's window, days ascending, no duplicate model, at most 50
    models then ``other`` last, tokens descending with ties by permaslug. ``days`` gets each
    row's date when given."""
    start, end = meta.start_date, meta.end_date
    previous: date | None = None
    begin = 0
    for stop in (
        *compress(count(1), map(ne, keys, islice(keys, 1, None))),
        len(keys),
    ):  # one step per day
        day = to_date(keys[begin])
        if day is None:
            return False
        if not start <= day <= end or (previous is not None and day <= previous):
            return False
        size = stop - begin
        models = slugs[begin:stop]
        if len(set(models)) != size:
            return False
        if OTHER_PERMASLUG in models:
            if models[-1] != OTHER_PERMASLUG:
                return False
            del models[-1]
        if len(models) > TOP_MODELS_PER_DAY:
            return False
        tally = counts[begin : begin + len(models)]
        following = tally[1:]
        if not all(map(gt, tally, following)):  # ties (or disorder): ties must go by permaslug
            if not all(map(ge, tally, following)):
                return False
            for index in compress(count(), map(eq, tally, following)):
                if models[index] > models[index + 1]:
                    return False
        if days is not None:
            days += repeat(day, size)
        previous, begin = day, stop
    return True


def _checked_rows(data: list[Any], meta: DatasetMeta) -> tuple[RankingsDailyRow, ...]:
    """Row by row: the rows of a valid answer, else :class:`InvalidResponseError` naming row and field."""
    rows: list[RankingsDailyRow] = []
    seen: set[str] = set()
    current: date | None = None
    models_today = 0
    other_today = False
    previous: RankingsDailyRow | None = None
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise fail(f"row is {type(item).__name__}, not an object", row=index)
        day = parse_date(
            require(item, "date", str, where="a row", row=index), field="date", row=index
        )
        slug = require(item, "model_permaslug", str, where="a row", row=index)
        if not slug:
            raise fail("empty model_permaslug", field="model_permaslug", row=index)
        tokens = parse_count(
            require(item, "total_tokens", (str, int), where="a row", row=index),
            field="total_tokens",
            row=index,
        )
        if not meta.start_date <= day <= meta.end_date:
            raise fail(
                f"date {day} lies outside meta's window {meta.window}", field="date", row=index
            )
        if current is None or day != current:
            if current is not None and day < current:
                raise fail(
                    f"date {day} comes after {current}; rows must be sorted by date",
                    field="date",
                    row=index,
                )
            current, models_today, other_today, previous, seen = day, 0, False, None, set()
        if slug in seen:
            raise fail(f"duplicate row for ({day}, {slug})", field="model_permaslug", row=index)
        seen.add(slug)
        if other_today:
            raise fail(
                f"row for {slug!r} follows the 'other' row of {day}; 'other' must be last",
                field="model_permaslug",
                row=index,
            )
        row = RankingsDailyRow(day, slug, tokens)
        if slug == OTHER_PERMASLUG:
            other_today = True
        else:
            models_today += 1
            if models_today > TOP_MODELS_PER_DAY:
                raise fail(
                    f"more than {TOP_MODELS_PER_DAY} models on {day}",
                    field="model_permaslug",
                    row=index,
                )
            if previous is not None and (-previous.total_tokens, previous.model_permaslug) > (
                -tokens,
                slug,
            ):
                raise fail(
                    f"{slug!r} ({tokens}) is out of order after {previous.model_permaslug!r} ({previous.total_tokens}); "
                    "rows must be sorted by tokens descending, ties by permaslug",
                    field="total_tokens",
                    row=index,
                )
            previous = row
        rows.append(row)
    return tuple(rows)


def partition_key(day: date) -> str:
    """``rankings_daily/date=YYYY-MM-DD``: the partition of one UTC day, relative to ``output_uri``."""
    return f"rankings_daily/date={day.isoformat()}"
