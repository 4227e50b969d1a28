"""The app-rankings dataset: apps ranked by tokens (``popular``) or growth (``trending``) over a window.

Everything about the dataset in one place: its endpoint and filters, paging (at most 200 apps are
reachable), its answer's rules, its columns, its partition layout in the lake and its citation.
Pure, so that a typo fails when a DAG is parsed, not when a run spends a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

import msgspec

from airflow_provider_openrouter.api.answers import (
    DatasetMeta,
    decode_wire,
    envelope,
    exact_counts,
    fail,
    parse_count,
    parse_meta,
    require,
    wire_meta,
)
from airflow_provider_openrouter.api.endpoints import window_params
from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.windows.intervals import Window

NAME = "app-rankings"
PATH = "/datasets/app-rankings"
PUBLIC_PAGE = "https://openrouter.ai/apps"
CITATION = "Source: OpenRouter (openrouter.ai/apps), as of {as_of}."

APP_SORTS = ("popular", "trending")

APP_PAGE_LIMIT = 100

APP_MAX_OFFSET = 100

#: ``offset`` 0-100 plus ``limit`` 1-100: no more apps than this are reachable.
APP_CEILING = APP_MAX_OFFSET + APP_PAGE_LIMIT

#: Marketplace subcategories and the category group each belongs to.
SUBCATEGORY_CATEGORY: dict[str, str] = {
    "cli-agent": "coding",
    "ide-extension": "coding",
    "cloud-agent": "coding",
    "programming-app": "coding",
    "native-app-builder": "coding",
    "creative-writing": "creative",
    "video-gen": "creative",
    "image-gen": "creative",
    "audio-gen": "creative",
    "roleplay": "entertainment",
    "game": "entertainment",
    "writing-assistant": "productivity",
    "general-chat": "productivity",
    "personal-agent": "productivity",
    "legal": "productivity",
}

APP_CATEGORIES = ("coding", "creative", "productivity", "entertainment")

COLUMNS: tuple[tuple[str, str], ...] = (
    ("app_id", "int"),
    ("app_name", "string"),
    ("rank", "int"),
    ("total_requests", "int"),
    ("total_tokens", "int"),
)


def validate_app_params(
    sort: str, category: str | None, subcategory: str | None, max_apps: int
) -> None:
    """Raise :class:`InvalidParameterError` naming the first bad app-rankings parameter."""
    if sort not in APP_SORTS:
        raise InvalidParameterError(
            f"sort={sort!r} is not supported; use one of {', '.join(APP_SORTS)}."
        )
    if category is not None and category not in APP_CATEGORIES:
        raise InvalidParameterError(
            f"category={category!r} is not an OpenRouter app category; use one of "
            f"{', '.join(APP_CATEGORIES)} or None for all apps."
        )
    if subcategory is not None:
        parent = SUBCATEGORY_CATEGORY.get(subcategory)
        if parent is None:
            raise InvalidParameterError(
                f"subcategory={subcategory!r} is not an OpenRouter app subcategory; use one of "
                f"{', '.join(SUBCATEGORY_CATEGORY)} or None."
            )
        if category is not None and parent != category:
            raise InvalidParameterError(
                f"subcategory={subcategory!r} belongs to category {parent!r}, not {category!r}; "
                f"set category={parent!r} or leave it None."
            )
    if (
        isinstance(max_apps, bool)
        or not isinstance(max_apps, int)
        or not 1 <= max_apps <= APP_CEILING
    ):
        raise InvalidParameterError(
            f"max_apps={max_apps!r} must be an integer from 1 to {APP_CEILING} "
            "(the API reaches no app beyond rank 200)."
        )


def app_page_params(
    window: Window,
    *,
    sort: str,
    category: str | None,
    subcategory: str | None,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    params: dict[str, Any] = {**window_params(window), "sort": sort}
    if category is not None:
        params["category"] = category
    if subcategory is not None:
        params["subcategory"] = subcategory
    params["limit"] = limit
    params["offset"] = offset
    return params


def app_pages(max_apps: int) -> list[tuple[int, int]]:
    """(offset, limit) of the pages needed for ``max_apps`` apps, largest pages first."""
    validate_app_params("popular", None, None, max_apps)
    pages = []
    offset = 0
    while offset < max_apps:
        limit = min(APP_PAGE_LIMIT, max_apps - offset)
        pages.append((offset, limit))
        offset += limit
    return pages


class AppRankingRow(msgspec.Struct, frozen=True, gc=False):
    """One app's position and totals inside a window (immutable, compared by value)."""

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


class _WireApp(msgspec.Struct, gc=False):
    """An app row as the API sends it; unknown fields are ignored."""

    app_id: int
    app_name: str
    rank: int
    total_requests: int | str
    total_tokens: int | str


class _WirePage(msgspec.Struct, gc=False):
    data: list[_WireApp]
    meta: msgspec.Raw


_WIRE = msgspec.json.Decoder(_WirePage)


def decode(body: bytes) -> Any:
    """An app-rankings page's bytes as :func:`parse_app_rankings_page` reads them fastest: typed
    wire rows, or plain JSON for any other shape (see :func:`~airflow_provider_openrouter.api.answers.decode_wire`)."""
    return decode_wire(_WIRE, body)


def parse_app_rankings_page(payload: Any, offset: int) -> tuple[DatasetMeta, list[AppRankingRow]]:
    """Validate one app-rankings page: ranks must run ``offset + 1, offset + 2, ...`` without gaps.

    ``payload`` is decoded JSON or what :func:`decode` made of the page's bytes. Wire rows (types
    already checked) and pages of plain ``dict``/``str``/``int`` values are checked column by
    column; anything else is re-checked row by row, which names the row and field of the first
    broken rule.
    """
    if type(payload) is _WirePage:
        meta = parse_meta(wire_meta(payload.meta))
        rows = _wire_page(payload.data, offset)
        if rows is None:
            rows = _checked_page(list(map(msgspec.structs.asdict, payload.data)), offset)
        return meta, rows
    data, raw_meta = envelope(payload)
    meta = parse_meta(raw_meta)
    rows = _fast_page(data, offset)
    if rows is None:
        rows = _checked_page(data, offset)
    return meta, rows


_APP_ID, _APP_NAME, _RANK = itemgetter("app_id"), itemgetter("app_name"), itemgetter("rank")
_REQUESTS, _TOKENS = itemgetter("total_requests"), itemgetter("total_tokens")
_WIRE_COLUMNS = attrgetter("app_id", "app_name", "rank", "total_requests", "total_tokens")
_DICT, _STR, _INT = {dict}, {str}, {int}


def _wire_page(data: list[_WireApp], offset: int) -> list[AppRankingRow] | None:
    """The rows of a valid page decoded into wire rows (types already checked), or None."""
    if not data:
        return []
    ids, names, ranks, requests, tokens = map(list, zip(*map(_WIRE_COLUMNS, data), strict=True))
    return _valid_page(ids, names, ranks, exact_counts(requests), exact_counts(tokens), offset)


def _valid_page(
    ids: list[int],
    names: list[str],
    ranks: list[int],
    requests: list[int] | None,
    tokens: list[int] | None,
    offset: int,
) -> list[AppRankingRow] | None:
    if (
        requests is None
        or tokens is None
        or ranks != list(range(offset + 1, offset + 1 + len(ranks)))
    ):
        return None
    return list(map(AppRankingRow, ids, names, ranks, requests, tokens))


def _fast_page(data: list[Any], offset: int) -> list[AppRankingRow] | None:
    """The rows of a valid page of plain values, or None to re-check row by row."""
    if not data:
        return []
    if set(map(type, data)) != _DICT:
        return None
    try:
        ids, names, ranks = (
            list(map(_APP_ID, data)),
            list(map(_APP_NAME, data)),
            list(map(_RANK, data)),
        )
        requests, tokens = (
            exact_counts(list(map(_REQUESTS, data))),
            exact_counts(list(map(_TOKENS, data))),
        )
    except KeyError:
        return None
    if (
        set(map(type, ids)) != _INT
        or set(map(type, names)) != _STR
        or set(map(type, ranks)) != _INT
    ):
        return None
    return _valid_page(ids, names, ranks, requests, tokens, offset)


def _checked_page(data: list[Any], offset: int) -> list[AppRankingRow]:
    """Row by row: the rows of a valid page, else :class:`InvalidResponseError` naming row and field."""
    rows: list[AppRankingRow] = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise fail(f"row is {type(item).__name__}, not an object", row=offset + index)
        where = offset + index
        app_id = require(item, "app_id", int, where="a row", row=where)
        name = require(item, "app_name", str, where="a row", row=where)
        rank = require(item, "rank", int, where="a row", row=where)
        requests = parse_count(
            require(item, "total_requests", (int, str), where="a row", row=where),
            field="total_requests",
            row=where,
        )
        tokens = parse_count(
            require(item, "total_tokens", (int, str), where="a row", row=where),
            field="total_tokens",
            row=where,
        )
        if rank != offset + index + 1:
            raise fail(
                f"rank {rank} where {offset + index + 1} was expected; ranks are absolute across pages",
                field="rank",
                row=where,
            )
        rows.append(AppRankingRow(app_id, name, rank, requests, tokens))
    return rows


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
            raise fail(
                f"pages answered different windows ({meta.window} and {page_meta.window})",
                field="meta",
            )
        for row in page_rows:
            if row.app_id in seen:
                raise fail(
                    f"app {row.app_id} appears twice across pages", field="app_id", row=row.rank - 1
                )
            seen.add(row.app_id)
            rows.append(row)
    return AppRankings(
        meta=meta, rows=tuple(rows), requested=requested, capped=capped, requests=tuple(requests)
    )


def partition_key(sort: str, category: str | None, subcategory: str | None, window: Window) -> str:
    """``app_rankings/sort=.../category=...|all/subcategory=...|all/window=START_END``."""
    return (
        f"app_rankings/sort={sort}/category={category or 'all'}/subcategory={subcategory or 'all'}"
        f"/window={window.start.isoformat()}_{window.end.isoformat()}"
    )
