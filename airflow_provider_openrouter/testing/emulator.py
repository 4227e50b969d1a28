"""A stdlib-only emulator of OpenRouter's Data API, for tests and demos.

It serves ``/api/v1/key``, ``/api/v1/datasets/rankings-daily``,
``/api/v1/datasets/app-rankings``, ``/api/v1/datasets/session-cost`` (weekly snapshots on the
emulator's clock; ``/_emulator/session_cost`` sets ``published``, ``cells``,
``publish_lag_seconds``) and the beta ``/api/v1/analytics/meta`` and
``/api/v1/analytics/query`` (management key only) with the real API's
validation, clamping, auth, rate limits and error shapes, over deterministic
synthetic data (:mod:`.dataset`, :mod:`.analytics_engine`).  Tests drive it
in-process (:class:`Emulator` methods) or, from other processes, through the
unauthenticated ``/_emulator/*`` control endpoints (``/_emulator/analytics``
sets ``timeout_span_seconds``).  Run it standalone with::

    python -m airflow_provider_openrouter.testing.emulator --port 0

This module must not import anything from the rest of the package.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import analytics_engine, dataset

API_PREFIX = "/api/v1"
CONTROL_PREFIX = "/_emulator"
DEFAULT_KEY = "sk-or-emulator"
DEFAULT_MANAGEMENT_KEY = analytics_engine.MANAGEMENT_KEY
ANALYTICS_META = API_PREFIX + "/analytics/meta"
ANALYTICS_QUERY = API_PREFIX + "/analytics/query"
SESSION_COST = API_PREFIX + "/datasets/session-cost"
SESSION_COST_MAX_LIMIT = 500
SESSION_COST_MAX_OFFSET = 5000
FAULT_KINDS = frozenset(
    {"500", "503", "502_html", "truncated", "reset", "slow", "429", "bad_json", "payload"}
)
RETRY_AFTER_FORMATS = ("seconds", "http-date", None)
SORTS = ("popular", "trending")
MAX_SPAN_DAYS = 366
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE = re.compile(r"[0-9]+")
_UNSET: Any = object()
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class ApiError(Exception):
    """An API error answered as ``{"error": {"code", "message", "metadata"}}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class _Reply:
    status: int | None  # None: no response at all (connection reset)
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    declared_length: int | None = None  # > len(body): truncated response


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None: until cleared
    path: str | None
    opts: dict[str, Any]


def _json_reply(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Reply:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return _Reply(status, body, headers=headers or {})


def _error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _json_reply(
        status, {"error": {"code": status, "message": message, "metadata": None}}, headers
    )


def _mask_key(key: str) -> str:
    return f"{key[:8]}...{key[-3:]}" if len(key) >= 12 else f"{key[:3]}..."


def _parse_date(name: str, raw: str | None) -> date | None:
    if raw is None:
        return None
    if not _DATE_RE.fullmatch(raw):
        raise ApiError(400, f"Invalid {name}: expected YYYY-MM-DD, got {raw!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: {raw} is not a valid calendar date") from None


def _parse_int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not _INT_RE.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(
            400, f"Invalid {name}: expected an integer from {low} to {high}, got {raw!r}"
        )
    return int(raw)


def _format_as_of(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso_datetime(raw: str) -> datetime:
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"datetime must be timezone-aware: {raw!r}")
    return value.astimezone(timezone.utc)


class Emulator:
    """OpenRouter Data API emulator serving on a background thread.

    Args:
        host, port: where to listen; port 0 picks a free port (see :attr:`port`).
        api_keys: accepted bearer tokens.
        rpm: requests per key in any sliding 60 s (real, monotonic) window; None disables.
        daily_limit: requests per UTC day (emulator clock) for all keys together; None disables.
        retry_after: ``Retry-After`` on 429s: "seconds", "http-date" or None (no header).
        now: freeze the emulator clock at this tz-aware instant (default: follow real time).
        ingest_lag: ``as_of = now - ingest_lag``; the last complete day is ``as_of`` - 1 day.
        management_keys: bearer tokens that are management keys: accepted everywhere, and the
            only keys the analytics endpoints accept (any other valid key gets a 403).
        analytics_timeout_span: analytics queries whose time range is longer than this answer
            408 (query timeout); None never times out.
        session_cost_cells: cells in every session-cost snapshot (0-6400; the API reaches 5500).
        session_cost_published: False serves the no-snapshot state (null window, no data).
        session_cost_publish_lag: a snapshot whose window ends on day D (a Monday, weekly from
            ``dataset.SESSION_COST_FIRST_END``) is served from ``D + 1 day + lag`` (``as_of`` clock).

    Only ``/api/v1/datasets/*`` and ``/api/v1/analytics/*`` requests that pass auth count
    against the limits (400s and 408s included, 403s, 429s and injected faults excluded).
    Control requests are neither logged, faulted nor limited.  Requests with a body are
    logged with it (decoded JSON) under ``"body"``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: tuple[str, ...] | list[str] = (DEFAULT_KEY,),
        rpm: int | None = 30,
        daily_limit: int | None = 500,
        retry_after: str | None = "seconds",
        now: datetime | None = None,
        ingest_lag: timedelta = timedelta(0),
        management_keys: tuple[str, ...] | list[str] = (DEFAULT_MANAGEMENT_KEY,),
        analytics_timeout_span: timedelta | None = None,
        session_cost_cells: int = dataset.SESSION_COST_CELLS,
        session_cost_published: bool = True,
        session_cost_publish_lag: timedelta = timedelta(hours=2),
    ) -> None:
        self.host = host
        self._port = port
        self.api_keys = frozenset(api_keys)
        self.management_keys = frozenset(management_keys)
        self.analytics_timeout_span: timedelta | None = None
        self._analytics_cache: dict[str, int] = {}
        self._lock = threading.Lock()
        self._fixed_now: datetime | None = None
        self.ingest_lag = ingest_lag
        self._versions: dict[date, int] = {}
        self._faults: list[_Fault] = []
        self._log: list[dict[str, Any]] = []
        self._minute: dict[str, deque[float]] = {}
        self._day: date | None = None
        self._day_count = 0
        self.rpm: int | None = None
        self.daily_limit: int | None = None
        self.retry_after: str | None = None
        self.set_limits(rpm=rpm, daily_limit=daily_limit, retry_after=retry_after)
        self.set_analytics_timeout_span(analytics_timeout_span)
        self.session_cost_cells = dataset.SESSION_COST_CELLS
        self.session_cost_published = True
        self.session_cost_publish_lag = timedelta(hours=2)
        self.set_session_cost(
            cells=session_cost_cells,
            published=session_cost_published,
            publish_lag=session_cost_publish_lag,
        )
        if now is not None:
            self.set_now(now)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self._port), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"openrouter-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self._port

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:8123`` (control endpoints live under it)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:8123/api/v1``."""
        return self.url + API_PREFIX

    # ------------------------------------------------------------ clock and data

    def set_now(self, now: datetime | None) -> None:
        """Freeze the emulator clock at ``now`` (tz-aware); None follows real time again."""
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        with self._lock:
            self._fixed_now = None if now is None else now.astimezone(timezone.utc)

    def now(self) -> datetime:
        """Current emulator time (UTC)."""
        return self._fixed_now or datetime.now(timezone.utc)

    def as_of(self) -> datetime:
        """Snapshot time of the data: ``now - ingest_lag``, whole seconds."""
        return (self.now() - self.ingest_lag).replace(microsecond=0)

    def last_complete_day(self) -> date:
        """The most recent day served: ``as_of``'s date minus one day."""
        return self.as_of().date() - timedelta(days=1)

    def restate(self, day: date | str) -> int:
        """Bump ``day``'s restatement version (its numbers grow 1-5 %); returns the version."""
        day = date.fromisoformat(day) if isinstance(day, str) else day
        with self._lock:
            self._versions[day] = self._versions.get(day, 0) + 1
            return self._versions[day]

    def version(self, day: date) -> int:
        """Restatement version of ``day`` (0 = never restated)."""
        return self._versions.get(day, 0)

    # ------------------------------------------------------------ limits and faults

    def set_limits(
        self,
        *,
        rpm: int | None = _UNSET,
        daily_limit: int | None = _UNSET,
        retry_after: str | None = _UNSET,
    ) -> None:
        """Change any of the rate-limit settings (omitted ones are kept)."""
        if retry_after is not _UNSET and retry_after not in RETRY_AFTER_FORMATS:
            raise ValueError(f"retry_after must be one of {RETRY_AFTER_FORMATS}")
        for value in (rpm, daily_limit):
            if (
                value is not _UNSET
                and value is not None
                and (not isinstance(value, int) or value < 1)
            ):
                raise ValueError("limits must be positive integers or None")
        with self._lock:
            if rpm is not _UNSET:
                self.rpm = rpm
            if daily_limit is not _UNSET:
                self.daily_limit = daily_limit
            if retry_after is not _UNSET:
                self.retry_after = retry_after

    def inject(
        self, kind: str, times: int | None = 1, path: str | None = None, **opts: Any
    ) -> None:
        """Queue a fault for the next ``times`` API requests whose path ends with ``path``.

        Kinds: "500", "503", "502_html", "truncated", "reset", "slow" (``seconds=``),
        "429" (``retry_after=`` header value, optional), "bad_json", "payload" (``body=``,
        optional ``status=``).  ``times=None`` repeats until :meth:`reset`.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        if kind == "slow" and not isinstance(opts.get("seconds"), (int, float)):
            raise ValueError("the 'slow' fault needs seconds=<number>")
        if kind == "payload" and "body" not in opts:
            raise ValueError("the 'payload' fault needs body=<JSON-serialisable object>")
        with self._lock:
            self._faults.append(_Fault(kind, times, path, dict(opts)))

    def set_session_cost(
        self,
        *,
        cells: int | None = None,
        published: bool | None = None,
        publish_lag: timedelta | None = None,
    ) -> None:
        """Change the session-cost snapshots: cell count, published or not, publication lag."""
        most = len(dataset.HARNESSES) * dataset.SESSION_COST_MODELS * len(dataset.TURN_RANGES)
        if cells is not None and (
            isinstance(cells, bool) or not isinstance(cells, int) or not 0 <= cells <= most
        ):
            raise ValueError(f"cells must be an integer from 0 to {most}")
        if publish_lag is not None and (
            not isinstance(publish_lag, timedelta) or publish_lag < timedelta(0)
        ):
            raise ValueError("publish_lag must be a non-negative timedelta")
        with self._lock:
            if cells is not None:
                self.session_cost_cells = cells
            if published is not None:
                self.session_cost_published = bool(published)
            if publish_lag is not None:
                self.session_cost_publish_lag = publish_lag

    def session_cost_window_end(self) -> date | None:
        """``window_end_date`` of the snapshot served now, None when none is published."""
        if not self.session_cost_published:
            return None
        first = dataset.SESSION_COST_FIRST_END
        since = (
            self.as_of()
            - datetime.combine(first + timedelta(days=1), datetime.min.time(), timezone.utc)
            - self.session_cost_publish_lag
        )
        if since < timedelta(0):
            return None
        return first + timedelta(days=7 * (since // timedelta(days=7)))

    def set_analytics_timeout_span(self, span: timedelta | None) -> None:
        """Analytics queries over a time range longer than ``span`` answer 408; None disables."""
        if span is not None and (not isinstance(span, timedelta) or span <= timedelta(0)):
            raise ValueError("analytics_timeout_span must be a positive timedelta or None")
        with self._lock:
            self.analytics_timeout_span = span

    def reset(self) -> None:
        """Clear the request log, pending faults, rate-limit counters and the analytics cache."""
        with self._lock:
            self._log.clear()
            self._analytics_cache.clear()
            self._faults.clear()
            self._minute.clear()
            self._day, self._day_count = None, 0

    # ------------------------------------------------------------ request log

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log (oldest first)."""
        with self._lock:
            return [dict(entry, params=dict(entry["params"])) for entry in self._log]

    def request_count(self, path_suffix: str | None = None, status: int | None = None) -> int:
        """Number of logged requests matching a path suffix and/or a status."""
        return sum(
            1
            for e in self.requests
            if (path_suffix is None or e["path"].endswith(path_suffix))
            and (status is None or e["status"] == status)
        )

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------ request handling

    def _handle_api(
        self, method: str, path: str, params: dict[str, str], headers: Any, body: bytes = b""
    ) -> tuple[_Reply, str | None, float]:
        """Answer one API request; returns (reply, fault kind, seconds to sleep first)."""
        fault = self._take_fault(path)
        if fault is not None and fault.kind != "slow":
            return self._fault_reply(fault), fault.kind, 0.0
        delay = float(fault.opts["seconds"]) if fault is not None else 0.0
        kind = fault.kind if fault is not None else None
        try:
            if not path.startswith(API_PREFIX + "/"):
                raise ApiError(404, "Not Found")
            key = self._authenticate(headers)
            if path in (ANALYTICS_META, ANALYTICS_QUERY):
                return self._analytics(method, path, key, body), kind, delay
            if method != "GET":
                raise ApiError(405, f"Method {method} not allowed")
            if path == API_PREFIX + "/key":
                return self._key_reply(key), kind, delay
            if path not in (
                API_PREFIX + "/datasets/rankings-daily",
                API_PREFIX + "/datasets/app-rankings",
                SESSION_COST,
            ):
                raise ApiError(404, "Not Found")
            self._check_and_count(key)
            if path == SESSION_COST:
                return _Reply(200, analytics_engine.dumps(self._session_cost(params))), kind, delay
            if path.endswith("/rankings-daily"):
                return _json_reply(200, self._rankings_daily(params)), kind, delay
            return _json_reply(200, self._app_rankings(params)), kind, delay
        except ApiError as exc:
            return _error_reply(exc.status, exc.message, exc.headers), kind, delay

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or path.endswith(fault.path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _fault_reply(self, fault: _Fault) -> _Reply:
        kind, opts = fault.kind, fault.opts
        if kind == "500":
            return _error_reply(500, "Internal Server Error")
        if kind == "503":
            return _error_reply(503, "Service Unavailable", {"Retry-After": "1"})
        if kind == "502_html":
            return _Reply(502, _HTML_502, content_type="text/html")
        if kind == "429":
            value = opts.get("retry_after")
            return _error_reply(
                429,
                opts.get("message", "Rate limit exceeded"),
                {} if value is None else {"Retry-After": str(value)},
            )
        if kind == "bad_json":
            return _Reply(200, b'{"data": [')
        if kind == "payload":
            return _json_reply(int(opts.get("status", 200)), opts["body"])
        if kind == "truncated":
            body = (
                b'{"data":[{"date":"2025-01-01","model_permaslug":"openai/gpt-4o-2024-05-13",'
                b'"total_tokens":"1234'
            )
            return _Reply(200, body, declared_length=len(body) + 4096)
        return _Reply(None)  # reset

    def _authenticate(self, headers: Any) -> str:
        value = headers.get("Authorization")
        if value is None:
            raise ApiError(401, "Missing Authentication header")
        scheme, _, key = value.strip().partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self.api_keys | self.management_keys:
            raise ApiError(401, "Invalid API key")
        return key.strip()

    def _check_and_count(self, key: str) -> None:
        """Apply both rate limits to one request and count it if it is admitted."""
        mono = time.monotonic()
        now = self.now()
        with self._lock:
            if self._day != now.date():
                self._day, self._day_count = now.date(), 0
            if self.daily_limit is not None and self._day_count >= self.daily_limit:
                midnight = datetime.combine(
                    now.date() + timedelta(days=1), datetime.min.time(), timezone.utc
                )
                raise ApiError(
                    429,
                    f"Daily request limit exceeded: {self.daily_limit} requests per day",
                    self._retry_after_header((midnight - now).total_seconds()),
                )
            window = self._minute.setdefault(key, deque())
            while window and window[0] <= mono - 60:
                window.popleft()
            if self.rpm is not None and len(window) >= self.rpm:
                wait = window[len(window) - self.rpm] + 60 - mono
                raise ApiError(
                    429,
                    f"Rate limit exceeded: {self.rpm} requests per minute",
                    self._retry_after_header(wait),
                )
            window.append(mono)
            self._day_count += 1

    def _retry_after_header(self, wait_seconds: float) -> dict[str, str]:
        seconds = max(1, math.ceil(wait_seconds))
        if self.retry_after == "seconds":
            return {"Retry-After": str(seconds)}
        if self.retry_after == "http-date":  # relative to the real clock, as clients compare
            at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=seconds + 1)
            return {"Retry-After": format_datetime(at, usegmt=True)}
        return {}

    def _key_reply(self, key: str) -> _Reply:
        return _json_reply(
            200,
            {
                "data": {
                    "label": _mask_key(key),
                    "limit": None,
                    "usage": 0,
                    "limit_remaining": None,
                    "is_free_tier": False,
                    "is_provisioning_key": key in self.management_keys,
                    "rate_limit": {"requests": self.rpm or -1, "interval": "60s"},
                }
            },
        )

    def _window(self, params: dict[str, str]) -> tuple[date, date]:
        """Resolve start_date/end_date with the API's defaults, clamping and checks."""
        start = _parse_date("start_date", params.get("start_date"))
        end = _parse_date("end_date", params.get("end_date"))
        last = self.last_complete_day()
        if end is not None and end < dataset.FLOOR:
            raise ApiError(400, f"Invalid end_date: must be on or after {dataset.FLOOR}, got {end}")
        end = last if end is None or end > last else end
        start = end - timedelta(days=30) if start is None else start
        start = max(start, dataset.FLOOR)
        if start > end:
            raise ApiError(
                400,
                f"Invalid date window: start_date {start} is after end_date {end} "
                f"(the last complete day is {last})",
            )
        if (end - start).days + 1 > MAX_SPAN_DAYS:
            raise ApiError(
                400,
                f"Invalid date window: {(end - start).days + 1} days from start_date "
                f"to end_date, at most {MAX_SPAN_DAYS} allowed",
            )
        return start, end

    def _meta(self, start: date, end: date) -> dict[str, str]:
        return {
            "as_of": _format_as_of(self.as_of()),
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "version": "v1",
        }

    def _rankings_daily(self, params: dict[str, str]) -> dict[str, Any]:
        start, end = self._window(params)
        rows: list[dict[str, str]] = []
        for offset in range((end - start).days + 1):
            day = start + timedelta(days=offset)
            rows.extend(dataset.rankings_daily_rows(day, self.version(day)))
        return {"data": rows, "meta": self._meta(start, end)}

    def _app_rankings(self, params: dict[str, str]) -> dict[str, Any]:
        start, end = self._window(params)
        sort = params.get("sort", "popular")
        if sort not in SORTS:
            raise ApiError(400, f"Invalid sort: expected one of {', '.join(SORTS)}, got {sort!r}")
        category, subcategory = params.get("category"), params.get("subcategory")
        if category is not None and category not in dataset.CATEGORIES:
            raise ApiError(
                400,
                f"Invalid category: expected one of {', '.join(dataset.CATEGORIES)}, "
                f"got {category!r}",
            )
        if subcategory is not None and subcategory not in dataset.SUBCATEGORIES:
            raise ApiError(
                400,
                f"Invalid subcategory: expected one of "
                f"{', '.join(dataset.SUBCATEGORIES)}, got {subcategory!r}",
            )
        if (
            category is not None
            and subcategory is not None
            and dataset.SUBCATEGORIES[subcategory] != category
        ):
            raise ApiError(
                400,
                f"Invalid subcategory: {subcategory!r} does not belong to category {category!r}",
            )
        limit = _parse_int("limit", params.get("limit"), 50, 1, 100)
        offset = _parse_int("offset", params.get("offset"), 0, 0, 100)
        with self._lock:
            versions = dict(self._versions)
        rows = dataset.app_rankings_rows(
            start,
            end,
            sort=sort,
            category=category,
            subcategory=subcategory,
            limit=limit,
            offset=offset,
            versions=versions,
        )
        return {"data": rows, "meta": self._meta(start, end)}

    def _session_cost(self, params: dict[str, str]) -> dict[str, Any]:
        """``GET /datasets/session-cost``: the current weekly snapshot's cells, filtered and paged."""
        filters: dict[str, str | None] = {}
        for name in ("app_slug", "model", "turn_range"):
            value = params.get(name)
            if value is not None and not value.strip():
                raise ApiError(400, f"Invalid {name}: must not be empty")
            filters[name] = value
        if filters["turn_range"] is not None and filters["turn_range"] not in dataset.TURN_RANGES:
            raise ApiError(
                400,
                f"Invalid turn_range: expected one of {', '.join(dataset.TURN_RANGES)}, "
                f"got {filters['turn_range']!r}",
            )
        limit = _parse_int("limit", params.get("limit"), 100, 1, SESSION_COST_MAX_LIMIT)
        offset = _parse_int("offset", params.get("offset"), 0, 0, SESSION_COST_MAX_OFFSET)
        end = self.session_cost_window_end()
        meta = {
            "as_of": _format_as_of(self.as_of()),
            "version": "v1",
            "window_days": None if end is None else dataset.SESSION_COST_WINDOW_DAYS,
            "window_end_date": None if end is None else end.isoformat(),
        }
        if end is None:
            return {"data": [], "meta": meta}
        rows = dataset.session_cost_rows(end, self.session_cost_cells, **filters)
        return {"data": rows[offset : offset + limit], "meta": meta}

    def _analytics(self, method: str, path: str, key: str, body: bytes) -> _Reply:
        """``GET /analytics/meta`` and ``POST /analytics/query``: management keys only."""
        expected = "POST" if path == ANALYTICS_QUERY else "GET"
        if method != expected:
            raise ApiError(405, f"Method {method} not allowed")
        if key not in self.management_keys:
            raise ApiError(403, "Management key required")
        self._check_and_count(key)
        if path == ANALYTICS_META:
            return _json_reply(200, analytics_engine.meta_payload())
        try:
            answer = analytics_engine.run_query(body, self.now(), self.analytics_timeout_span)
        except analytics_engine.QueryError as exc:
            raise ApiError(exc.status, exc.message) from None
        cache_key = json.dumps(json.loads(body), sort_keys=True)
        with self._lock:
            first = self._analytics_cache.get(cache_key)
            if first is None:
                self._analytics_cache[cache_key] = int(self.now().timestamp() * 1000)
        if first is not None:  # an identical query was answered before: say since when
            answer["data"]["cachedAt"] = first
        return _Reply(200, analytics_engine.dumps(answer))

    def _handle_control(self, method: str, path: str, body: bytes) -> _Reply:
        """The unauthenticated ``/_emulator/*`` endpoints."""
        name = path[len(CONTROL_PREFIX) :]
        if method == "GET" and name == "/requests":
            return _json_reply(200, {"requests": self.requests})
        if method == "GET" and name == "/analytics":
            span = self.analytics_timeout_span
            return _json_reply(
                200,
                {
                    "timeout_span_seconds": None if span is None else span.total_seconds(),
                    "management_keys": len(self.management_keys),
                },
            )
        if method == "GET" and name == "/session_cost":
            end = self.session_cost_window_end()
            return _json_reply(
                200,
                {
                    "published": self.session_cost_published,
                    "cells": self.session_cost_cells,
                    "publish_lag_seconds": self.session_cost_publish_lag.total_seconds(),
                    "window_end_date": None if end is None else end.isoformat(),
                },
            )
        if method == "GET" and name == "/clock":
            return _json_reply(
                200,
                {
                    "now": self.now().isoformat(),
                    "as_of": _format_as_of(self.as_of()),
                    "last_complete_day": self.last_complete_day().isoformat(),
                    "ingest_lag_seconds": self.ingest_lag.total_seconds(),
                },
            )
        if method != "POST":
            return _error_reply(404, "Not Found")
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
            if name == "/reset":
                self.reset()
            elif name == "/clock":
                if "now" in payload:
                    self.set_now(
                        None if payload["now"] is None else _parse_iso_datetime(payload["now"])
                    )
                if "ingest_lag_seconds" in payload:
                    self.ingest_lag = timedelta(seconds=float(payload["ingest_lag_seconds"]))
            elif name == "/faults":
                opts = {k: v for k, v in payload.items() if k not in ("kind", "times", "path")}
                self.inject(payload["kind"], payload.get("times", 1), payload.get("path"), **opts)
            elif name == "/restate":
                return _json_reply(
                    200,
                    {
                        "ok": True,
                        "date": payload["date"],
                        "version": self.restate(str(payload["date"])),
                    },
                )
            elif name == "/analytics":
                if "timeout_span_seconds" in payload:
                    seconds = payload["timeout_span_seconds"]
                    self.set_analytics_timeout_span(
                        None if seconds is None else timedelta(seconds=float(seconds))
                    )
            elif name == "/session_cost":
                lag = payload.get("publish_lag_seconds")
                self.set_session_cost(
                    cells=payload.get("cells"),
                    published=payload.get("published"),
                    publish_lag=None if lag is None else timedelta(seconds=float(lag)),
                )
            elif name == "/limits":
                self.set_limits(
                    **{k: payload[k] for k in ("rpm", "daily_limit", "retry_after") if k in payload}
                )
            else:
                return _error_reply(404, "Not Found")
        except (ValueError, KeyError, TypeError) as exc:
            return _error_reply(400, f"Invalid control request: {exc}")
        return _json_reply(200, {"ok": True})

    def _record(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        status: int | None,
        fault: str | None,
        body: bytes = b"",
    ) -> None:
        entry = {
            "method": method,
            "path": path,
            "params": params,
            "status": status,
            "time": self.now().isoformat(),
            "fault": fault,
        }
        if body:
            try:
                entry["body"] = json.loads(body)
            except ValueError:
                entry["body"] = body.decode(errors="replace")
        with self._lock:
            self._log.append(entry)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    emulator: Emulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OpenRouterEmulator/1.0"
    timeout = 300  # idle keep-alive connections are dropped after this
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        path = split.path
        if path.startswith(CONTROL_PREFIX + "/"):
            self._write(emulator._handle_control(method, path, body))
            return
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        try:
            reply, fault, delay = emulator._handle_api(method, path, params, self.headers, body)
        except Exception as exc:  # a bug in the emulator: answer, and show it on stderr
            self.server.handle_error(self.request, self.client_address)
            reply, fault, delay = _error_reply(500, f"Emulator error: {exc!r}"), None, 0.0
        emulator._record(method, path, params, reply.status, fault, body)
        if delay:
            time.sleep(delay)
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        if reply.status is None:  # reset: abort the connection with a TCP RST
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # drop makefile()'s reference so close() really closes
            self.connection.close()
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(reply.declared_length or len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.declared_length is not None:
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # the client went away (e.g. timed out on a slow fault)
            self.close_connection = True


def main(argv: list[str] | None = None) -> int:
    """CLI: print the base URL as the first stdout line, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help=f"accepted API key, repeatable (default {DEFAULT_KEY})",
    )
    parser.add_argument("--rpm", type=int, default=30, help="requests/minute per key, 0 disables")
    parser.add_argument("--daily-limit", type=int, default=500, help="requests/day, 0 disables")
    parser.add_argument(
        "--retry-after", choices=("seconds", "http-date", "none"), default="seconds"
    )
    parser.add_argument("--now", help="freeze the clock at this ISO time (default: real time)")
    parser.add_argument("--ingest-lag", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--management-key",
        action="append",
        dest="management_keys",
        metavar="KEY",
        help=f"accepted management key, repeatable (default {DEFAULT_MANAGEMENT_KEY})",
    )
    parser.add_argument(
        "--analytics-timeout-span",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="analytics queries over longer time ranges answer 408; 0 disables",
    )
    parser.add_argument(
        "--session-cost-cells",
        type=int,
        default=dataset.SESSION_COST_CELLS,
        help="cells in every session-cost snapshot (0-6400)",
    )
    parser.add_argument(
        "--no-session-cost",
        action="store_true",
        help="serve the session-cost endpoint with no snapshot published",
    )
    args = parser.parse_args(argv)
    emulator = Emulator(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.keys or (DEFAULT_KEY,)),
        rpm=args.rpm or None,
        daily_limit=args.daily_limit or None,
        retry_after=None if args.retry_after == "none" else args.retry_after,
        now=_parse_iso_datetime(args.now) if args.now else None,
        ingest_lag=timedelta(seconds=args.ingest_lag),
        management_keys=tuple(args.management_keys or (DEFAULT_MANAGEMENT_KEY,)),
        analytics_timeout_span=timedelta(seconds=args.analytics_timeout_span)
        if args.analytics_timeout_span
        else None,
        session_cost_cells=args.session_cost_cells,
        session_cost_published=not args.no_session_cost,
    )
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    with emulator:
        print(emulator.base_url, flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
