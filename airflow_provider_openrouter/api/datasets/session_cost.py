"""The session-cost dataset: median USD spend per session, by harness (app), model and turn range.

OpenRouter's ``GET /datasets/session-cost`` ("Cost per session by harness and model") serves one
weekly snapshot at a time: aggregated cells over a trailing window (``meta.window_days`` days
ending ``meta.window_end_date``), never pooling sessions across apps. Before the first snapshot,
or while none is published, ``window_days`` and ``window_end_date`` are null and ``data`` is empty.
``meta.as_of`` is when the *response* was generated, so it differs between pages and runs; the
snapshot is identified by ``(version, window_days, window_end_date)``.

Everything about the dataset in one place: its endpoint and filters, paging (``offset`` 0-5000,
``limit`` 1-500, so at most 5500 cells are reachable per filter set), its answer's rules, its
columns, its partition layout and its citation. Pure (no Airflow, no I/O), so a typo fails when
a DAG is parsed, not when a run spends a request.

Costs are JSON numbers; the client decodes them with ``parse_float=Decimal``, so
``median_session_cost_usd`` keeps every digit the API sent (a binary float would round them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from airflow_provider_openrouter.api.answers import fail, parse_date, parse_timestamp, require
from airflow_provider_openrouter.api.datasets import LICENSE as _LICENSE
from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import Window

NAME = "session-cost"
PATH = "/datasets/session-cost"
PUBLIC_PAGE = (
    "https://openrouter.ai/docs/api/api-reference/datasets/cost-per-session-by-harness-and-model"
)
CITATION = (
    "Source: OpenRouter (openrouter.ai), cost per session by harness and model, as of {as_of}."
)
#: Same licence as the other public datasets (CC BY 4.0, attribution to OpenRouter).
LICENSE = _LICENSE
CAVEATS = (
    "Medians of per-session USD spend over sampled sessions, computed per harness (app): sessions are "
    "never pooled across apps, so cells of different harnesses are separate populations. A median is "
    "not a mean: cells cannot be added up or averaged into totals. Cost per session is not comparable "
    "to the token rankings (different measure, population and window). Refreshed weekly over a "
    "trailing window (see window_days and window_end_date)."
)

#: The documented ``turn_range`` values (inclusive session turn counts), in their natural order.
TURN_RANGES = ("1-turn", "2-9-turns", "10-49-turns", "50-plus-turns")
PAGE_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_OFFSET = 5000
#: ``offset`` 0-5000 plus ``limit`` 1-500: no more cells than this are reachable per filter set.
CEILING = MAX_OFFSET + PAGE_LIMIT
DEFAULT_MAX_CELLS = 500
#: Snapshots are weekly: the next one ends this long after the last one seen.
SNAPSHOT_PERIOD = timedelta(days=7)
#: Partition directory of the dataset under ``output_uri``.
DIRECTORY = "session_cost"
#: The value of a filter's partition segment when the filter is unset.
ALL = "all"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("app_slug", "string"),
    ("app_name", "string"),
    ("model_permaslug", "string"),
    ("turn_range", "string"),
    ("median_session_cost_usd", "decimal"),
)

_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
_PERMASLUG_RE = re.compile(r"[A-Za-z0-9][^\s/]*/[^\s]{1,300}")


# ------------------------------------------------------------------ parameters (no request spent)
def validate_params(
    app_slug: str | None = None,
    model: str | None = None,
    turn_range: str | None = None,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> None:
    """Raise :class:`InvalidParameterError` naming the first bad session-cost parameter."""
    if app_slug is not None and (not isinstance(app_slug, str) or not _SLUG_RE.fullmatch(app_slug)):
        raise InvalidParameterError(
            f"app_slug={app_slug!r} is not a harness slug: use the app's lowercase slug as the API "
            "publishes it (e.g. 'hermes-agent'), or None for every harness."
        )
    if app_slug == ALL:
        raise InvalidParameterError(
            f"app_slug={ALL!r} is reserved: partition paths say app_slug={ALL} for no filter. "
            "Leave app_slug unset (None) for every harness."
        )
    if model is not None and (not isinstance(model, str) or not _PERMASLUG_RE.fullmatch(model)):
        raise InvalidParameterError(
            f"model={model!r} is not a model permaslug: use the exact 'vendor/model' permaslug "
            "(e.g. 'anthropic/claude-4.8-opus'), or None for every model."
        )
    if turn_range is not None and turn_range not in TURN_RANGES:
        raise InvalidParameterError(
            f"turn_range={turn_range!r} is not supported; use one of {', '.join(TURN_RANGES)} or None for all."
        )
    if (
        isinstance(max_cells, bool)
        or not isinstance(max_cells, int)
        or not 1 <= max_cells <= CEILING
    ):
        raise InvalidParameterError(
            f"max_cells={max_cells!r} must be an integer from 1 to {CEILING} (the API serves offsets up to "
            f"{MAX_OFFSET} with at most {PAGE_LIMIT} cells per page; narrow the query with app_slug, model "
            "or turn_range to reach more)."
        )


def pages(max_cells: int) -> list[tuple[int, int]]:
    """(offset, limit) of the pages needed for ``max_cells`` cells, full pages first."""
    validate_params(max_cells=max_cells)
    out = []
    offset = 0
    while offset < max_cells:
        limit = min(PAGE_LIMIT, max_cells - offset)
        out.append((offset, limit))
        offset += limit
    return out


def page_params(
    *, app_slug: str | None, model: str | None, turn_range: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """The query of one page (filters only when set, then ``limit`` and ``offset``)."""
    params: dict[str, Any] = {}
    if app_slug is not None:
        params["app_slug"] = app_slug
    if model is not None:
        params["model"] = model
    if turn_range is not None:
        params["turn_range"] = turn_range
    params["limit"] = limit
    params["offset"] = offset
    return params


# ------------------------------------------------------------------ answers
@dataclass(frozen=True)
class SessionCostMeta:
    """The ``meta`` block, typed; ``raw`` keeps it verbatim (for the manifest)."""

    as_of: datetime
    version: str
    window_days: int | None
    window_end_date: date | None
    raw: Mapping[str, Any]

    @property
    def published(self) -> bool:
        """False when OpenRouter has no snapshot published (window null, data empty)."""
        return self.window_end_date is not None

    @property
    def snapshot(self) -> tuple[str, int | None, date | None]:
        """What identifies the snapshot (``as_of`` does not: it is the response's generation time)."""
        return (self.version, self.window_days, self.window_end_date)

    @property
    def window(self) -> Window | None:
        """The snapshot's sample window as UTC days, None when no snapshot is published."""
        if self.window_end_date is None or self.window_days is None:
            return None
        return Window(
            self.window_end_date - timedelta(days=self.window_days - 1), self.window_end_date
        )

    def describe(self) -> str:
        if not self.published:
            return f"no snapshot published (as of {self.as_of.isoformat()})"
        return (
            f"snapshot {self.version} of {self.window_days} day(s) ending {self.window_end_date} "
            f"(as of {self.as_of.isoformat()})"
        )


@dataclass(frozen=True, slots=True)
class SessionCostRow:
    """One cell: the median USD spend per sampled session of a harness, model and turn range."""

    app_slug: str
    app_name: str
    model_permaslug: str
    turn_range: str
    median_session_cost_usd: Decimal

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.app_slug, self.model_permaslug, self.turn_range)

    def to_record(self) -> dict[str, Any]:
        return {
            "app_slug": self.app_slug,
            "app_name": self.app_name,
            "model_permaslug": self.model_permaslug,
            "turn_range": self.turn_range,
            "median_session_cost_usd": self.median_session_cost_usd,
        }


@dataclass(frozen=True)
class SessionCost:
    """Validated cells of one snapshot, all pages joined.

    ``capped``: the API's offset ceiling (5500 cells) was reached with a full page, so cells beyond
    it may exist and cannot be reached with these filters. ``truncated``: ``max_cells`` was reached
    with a full page below the ceiling, so more cells may exist. ``requests``: every page's query.
    """

    meta: SessionCostMeta
    rows: tuple[SessionCostRow, ...]
    capped: bool
    truncated: bool
    requests: tuple[Mapping[str, Any], ...] = ()

    @property
    def complete(self) -> bool:
        return not (self.capped or self.truncated)


def parse_meta(meta: Mapping[str, Any]) -> SessionCostMeta:
    """Type the ``meta`` block; the window is both null (no snapshot) or both set and sane."""
    as_of = parse_timestamp(require(meta, "as_of", str, where="meta"), field="meta.as_of")
    version = require(meta, "version", str, where="meta")
    for key in ("window_days", "window_end_date"):
        if key not in meta:
            raise fail(
                f"missing required field {key!r} in meta (null when no snapshot is published)",
                field=f"meta.{key}",
            )
    days, end = meta["window_days"], meta["window_end_date"]
    if (days is None) != (end is None):
        raise fail(
            f"window_days={days!r} and window_end_date={end!r}: both must be null (no snapshot) or both set",
            field="meta.window_days",
        )
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise fail(
                f"window_days={days!r} is not a positive whole number of days",
                field="meta.window_days",
            )
        end = parse_date(end, field="meta.window_end_date")
        if end >= as_of.date():
            raise fail(
                f"the snapshot window ends {end}, not before the response's as_of {as_of.isoformat()}",
                field="meta.window_end_date",
            )
    return SessionCostMeta(
        as_of=as_of, version=version, window_days=days, window_end_date=end, raw=dict(meta)
    )


def parse_cost(value: Any, *, row: int) -> Decimal:
    """An exact non-negative USD amount: a JSON number decoded as ``Decimal`` (or an integer)."""
    field = "median_session_cost_usd"
    if isinstance(value, float):
        raise fail(
            f"{value!r} is a binary float and may have lost digits; decode JSON with parse_float=Decimal",
            field=field,
            row=row,
        )
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise fail(f"{value!r} ({type(value).__name__}) is not a JSON number", field=field, row=row)
    amount = Decimal(value)
    if not amount.is_finite() or amount < 0:
        raise fail(f"{value!r} is not a finite non-negative USD amount", field=field, row=row)
    return amount


def parse_page(
    payload: Any,
    offset: int,
    *,
    app_slug: str | None = None,
    model: str | None = None,
    turn_range: str | None = None,
) -> tuple[SessionCostMeta, list[SessionCostRow]]:
    """Validate one page; every cell must match the filters sent and use a documented turn range."""
    if not isinstance(payload, Mapping):
        raise fail(f"expected a JSON object, got {type(payload).__name__}")
    data = require(payload, "data", list, where="the response")
    meta = parse_meta(require(payload, "meta", Mapping, where="the response"))
    if data and not meta.published:
        raise fail(
            f"{len(data)} cell(s) in an answer whose meta says no snapshot is published",
            field="meta.window_end_date",
        )
    rows: list[SessionCostRow] = []
    for index, item in enumerate(data):
        where = offset + index
        if not isinstance(item, Mapping):
            raise fail(f"row is {type(item).__name__}, not an object", row=where)
        slug = require(item, "app_slug", str, where="a row", row=where)
        name = require(item, "app_name", str, where="a row", row=where)
        permaslug = require(item, "model_permaslug", str, where="a row", row=where)
        turns = require(item, "turn_range", str, where="a row", row=where)
        if "median_session_cost_usd" not in item:
            raise fail(
                "missing required field 'median_session_cost_usd' in a row",
                field="median_session_cost_usd",
                row=where,
            )
        cost = parse_cost(item["median_session_cost_usd"], row=where)
        if not slug or not permaslug:
            raise fail(
                "empty app_slug or model_permaslug",
                field="app_slug" if not slug else "model_permaslug",
                row=where,
            )
        if turns not in TURN_RANGES:
            raise fail(
                f"turn_range {turns!r} is not one of {', '.join(TURN_RANGES)} (the API may have added one; "
                "upgrade the provider)",
                field="turn_range",
                row=where,
            )
        for field, sent, got in (
            ("app_slug", app_slug, slug),
            ("model_permaslug", model, permaslug),
            ("turn_range", turn_range, turns),
        ):
            if sent is not None and got != sent:
                raise fail(f"{got!r} in an answer filtered on {sent!r}", field=field, row=where)
        rows.append(SessionCostRow(slug, name, permaslug, turns, cost))
    return meta, rows


def join_pages(
    pages: Sequence[tuple[SessionCostMeta, list[SessionCostRow]]],
    *,
    capped: bool,
    truncated: bool,
    requests: Sequence[Mapping[str, Any]] = (),
) -> SessionCost:
    """Join validated pages: one snapshot throughout, and no (app_slug, model, turn_range) cell twice."""
    if not pages:
        raise ValueError("no pages to join")
    meta = pages[0][0]
    rows: list[SessionCostRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for number, (page_meta, page_rows) in enumerate(pages):
        if page_meta.snapshot != meta.snapshot:
            raise fail(
                f"page {number + 1} comes from another snapshot ({page_meta.describe()}) than page 1 "
                f"({meta.describe()}): OpenRouter published a new snapshot while the pages were read; "
                "run the task again",
                field="meta.window_end_date",
            )
        for row in page_rows:
            if row.cell in seen:
                raise fail(
                    f"the cell (app_slug={row.app_slug!r}, model={row.model_permaslug!r}, "
                    f"turn_range={row.turn_range!r}) appears twice (rows {seen[row.cell]} and {len(rows)})",
                    field="model_permaslug",
                    row=len(rows),
                )
            seen[row.cell] = len(rows)
            rows.append(row)
    return SessionCost(
        meta=meta, rows=tuple(rows), capped=capped, truncated=truncated, requests=tuple(requests)
    )


# ------------------------------------------------------------------ weekly cadence
def next_snapshot_end(last_end: date) -> date:
    """The ``window_end_date`` of the snapshot after the one ending ``last_end``."""
    return last_end + SNAPSHOT_PERIOD


def due_snapshot_end(last_end: date, before: date) -> date:
    """The newest weekly window end, counting from ``last_end``, that is on or before ``before``.

    ``last_end`` itself when no later one fits (the remembered snapshot is already the one due).
    """
    if before <= last_end:
        return last_end
    return last_end + SNAPSHOT_PERIOD * ((before - last_end).days // SNAPSHOT_PERIOD.days)


# ------------------------------------------------------------------ layout
def _segment(name: str, value: str) -> str:
    """A Hive-style ``name=value`` path segment; ``/``, ``:``, ``%`` and spaces are %-escaped."""
    return f"{name}={quote(value, safe='-._~')}"


def filter_segments(app_slug: str | None, model: str | None, turn_range: str | None) -> list[str]:
    """``app_slug=``, ``model=``, ``turn_range=`` segments, always all three: ``all`` where unset."""
    return [
        _segment(name, ALL if value is None else value)
        for name, value in (("app_slug", app_slug), ("model", model), ("turn_range", turn_range))
    ]


def partition_key(
    window_end: date,
    app_slug: str | None = None,
    model: str | None = None,
    turn_range: str | None = None,
) -> str:
    """``session_cost/app_slug=A|all/model=M|all/turn_range=T|all/window_end=YYYY-MM-DD``.

    Every partition has the same Hive keys, filters first and the snapshot last (as app rankings
    do), so a glob or a Hive reader over ``session_cost/app_slug=all/model=all/turn_range=all/``
    sees the unfiltered snapshots only, never a filtered slice of one.
    ``model=anthropic%2Fclaude-4.8-opus``: the permaslug's ``/`` (and ``:``) are %-escaped, Hive style.
    """
    return "/".join(
        [
            DIRECTORY,
            *filter_segments(app_slug, model, turn_range),
            f"window_end={window_end.isoformat()}",
        ]
    )


# ------------------------------------------------------------------ waiting for a snapshot
#: The cheapest request that shows which snapshot is published: one cell, no filter.
PROBE_PARAMS: Mapping[str, int] = {"limit": 1, "offset": 0}


def parse_probe(payload: Any) -> SessionCostMeta:
    """Validate a probe answer (the whole page, so a broken API never counts as a new snapshot)."""
    meta, _ = parse_page(payload, 0)
    return meta


def is_newer(meta: SessionCostMeta, after: date | None) -> bool:
    """Whether ``meta`` shows a published snapshot ending after ``after`` (any snapshot if None)."""
    return meta.window_end_date is not None and (after is None or meta.window_end_date > after)
