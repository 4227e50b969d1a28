"""The rankings-daily dataset: daily token totals per model (top 50, then ``other``).

Everything about the dataset in one place: its endpoint, its answer's rules, its columns, its
partition layout in the lake and its citation. Pure; the hook sends the requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

from airflow_provider_openrouter.api.answers import (
    DatasetMeta,
    envelope,
    fail,
    parse_count,
    parse_date,
    parse_meta,
    require,
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
COLUMNS: tuple[tuple[str, str], ...] = (("date", "date"), ("model_permaslug", "string"), ("total_tokens", "int"))


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

def parse_rankings_daily(payload: Any, requested: Window) -> RankingsDaily:
    """Validate a rankings-daily response.

    Checks types, digits-only counts, rows inside ``meta``'s window, dates ascending, no duplicate
    (date, model), at most 50 models then ``other`` last within each date, tokens descending with
    ties by permaslug.
    """
    data, raw_meta = envelope(payload)
    meta = parse_meta(raw_meta)
    rows: list[RankingsDailyRow] = []
    seen: set[str] = set()
    current: date | None = None
    models_today = 0
    other_today = False
    previous: RankingsDailyRow | None = None
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise fail(f"row is {type(item).__name__}, not an object", row=index)
        day = parse_date(require(item, "date", str, where="a row", row=index), field="date", row=index)
        slug = require(item, "model_permaslug", str, where="a row", row=index)
        if not slug:
            raise fail("empty model_permaslug", field="model_permaslug", row=index)
        tokens = parse_count(require(item, "total_tokens", (str, int), where="a row", row=index), field="total_tokens", row=index)
        if not meta.start_date <= day <= meta.end_date:
            raise fail(f"date {day} lies outside meta's window {meta.window}", field="date", row=index)
        if current is None or day != current:
            if current is not None and day < current:
                raise fail(f"date {day} comes after {current}; rows must be sorted by date", field="date", row=index)
            current, models_today, other_today, previous, seen = day, 0, False, None, set()
        if slug in seen:
            raise fail(f"duplicate row for ({day}, {slug})", field="model_permaslug", row=index)
        seen.add(slug)
        if other_today:
            raise fail(f"row for {slug!r} follows the 'other' row of {day}; 'other' must be last", field="model_permaslug", row=index)
        row = RankingsDailyRow(day, slug, tokens)
        if slug == OTHER_PERMASLUG:
            other_today = True
        else:
            models_today += 1
            if models_today > TOP_MODELS_PER_DAY:
                raise fail(f"more than {TOP_MODELS_PER_DAY} models on {day}", field="model_permaslug", row=index)
            if previous is not None and (-previous.total_tokens, previous.model_permaslug) > (-tokens, slug):
                raise fail(
                    f"{slug!r} ({tokens}) is out of order after {previous.model_permaslug!r} ({previous.total_tokens}); "
                    "rows must be sorted by tokens descending, ties by permaslug",
                    field="total_tokens",
                    row=index,
                )
            previous = row
        rows.append(row)
    return RankingsDaily(meta=meta, rows=tuple(rows), requested=requested)


def partition_key(day: date) -> str:
    """``rankings_daily/date=YYYY-MM-DD``: the partition of one UTC day, relative to ``output_uri``."""
    return f"rankings_daily/date={day.isoformat()}"
