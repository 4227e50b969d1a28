"""OpenRouterHook: an Airflow connection of type ``openrouter`` turned into typed dataset calls."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_openrouter.analytics.limits import DEFAULT_MAX_REQUESTS, DEFAULT_MIN_SLICE
from airflow_provider_openrouter.api import endpoints
from airflow_provider_openrouter.api.client import (
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TIMEOUT,
    OpenRouterClient,
)
from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily, session_cost
from airflow_provider_openrouter.api.datasets.app_rankings import (
    APP_CEILING,
    AppRankings,
    join_app_pages,
    parse_app_rankings_page,
    validate_app_params,
)
from airflow_provider_openrouter.api.datasets.rankings_daily import (
    RankingsDaily,
    parse_rankings_daily,
)
from airflow_provider_openrouter.api.retry import RetryPolicy
from airflow_provider_openrouter.compat import BaseHook, aget_connection
from airflow_provider_openrouter.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidParameterError,
    OpenRouterError,
    RateLimitedError,
    ServerError,
)

# Imported where used, not here: the analytics models (analytics.query, analytics.split) and the
# runtime's lineage, metrics and probe modules, so that importing the hook (every DAG file that
# uses an operator or the sensor does) costs only what the rankings calls need.
if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_openrouter.analytics.query import (
        AnalyticsMeta,
        AnalyticsQuery,
        AnalyticsResult,
    )
    from airflow_provider_openrouter.api.endpoints import DayLike
    from airflow_provider_openrouter.runtime import probe
    from airflow_provider_openrouter.windows.intervals import Window


def base_url_from_connection(conn: Connection, source: str | None = None) -> str:
    """The API's base URL from a connection's host, port and schema.

    ``host`` is the base URL (scheme optional, ``https`` by default; empty: ``https://openrouter.ai/api/v1``).
    A connection given as a URI (``AIRFLOW_CONN_...`` or ``airflow connections add --conn-uri``) has its
    URL path in ``schema`` and its port in ``port``: ``openrouter://:KEY@openrouter.ai/api/v1`` and
    ``openrouter://https://:KEY@openrouter.ai/api/v1`` both mean ``https://openrouter.ai/api/v1``.
    """
    source = source or f"connection {conn.conn_id!r}"
    host = (conn.host or "").strip()
    schema = (conn.schema or "").strip().strip("/")
    port = conn.port or None  # the UI sends 0 for "no port"
    if not host:
        if schema or port:
            raise InvalidParameterError(
                f"The {source} has a path or port ({schema or port!r}) but no host. Set the Base URL "
                "(host), e.g. https://openrouter.ai/api/v1, or leave host, port and schema empty for that default."
            )
        return DEFAULT_BASE_URL
    parts = urlsplit(host if "://" in host else "https://" + host)
    try:
        url_port = parts.port
    except ValueError:
        url_port = None
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidParameterError(
            f"The Base URL (host) of {source} is {host!r}; it must be an http(s) URL such as "
            "https://openrouter.ai/api/v1."
        )
    netloc, path = parts.netloc, parts.path.rstrip("/")
    if port:
        if url_port is not None and url_port != port:
            raise InvalidParameterError(
                f"The {source} has port {port} and a Base URL with port {url_port}; give the port once."
            )
        if url_port is None:
            netloc = f"{netloc}:{port}"
    if schema:
        if path and path.strip("/") != schema:
            raise InvalidParameterError(
                f"The {source} has a Base URL with the path {path!r} and a schema (URI path) {schema!r}; "
                "give the path once, e.g. host https://openrouter.ai/api/v1 and no schema."
            )
        path = "/" + schema
    return urlunsplit((parts.scheme, netloc, path, "", ""))


#: Above this ``requests_per_minute`` the shared budget is not used (see :func:`client_from_connection`).
MAX_SHARED_BUDGET_RPM = 60


def client_from_connection(
    conn: Connection,
    policy: RetryPolicy | None = None,
    *,
    shared_budget: bool = False,
    source: str | None = None,
) -> OpenRouterClient:
    """Build the API client from a connection (shared by the hook and the async trigger).

    The base URL comes from :func:`base_url_from_connection`, ``password`` is the API key; extras ``http_referer``, ``x_title``, ``categories``, ``timeout``, ``requests_per_minute``,
    ``shared_budget`` (default true). With ``shared_budget=True`` (sync callers: it blocks) every
    request also books a slot of the key's budget shared by all workers (``runtime/budget.py``).
    """
    extra = conn.extra_dejson or {}
    source = source or f"connection {conn.conn_id!r}"  # how errors name the connection
    base_url = base_url_from_connection(conn, source)
    key = conn.password or ""
    if key:
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(key)
        except ImportError:  # pragma: no cover - older task SDKs
            pass
    rpm = int(_positive(extra, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, int, source))
    budget = None
    # Booking a slot takes about 1.5 s per request and process: above 60 requests/minute that would
    # be slower than the limit itself, so such a key is paced in-process (and by 429s) only.
    wanted = str(extra.get("shared_budget", True)).strip().lower() not in (
        "false",
        "0",
        "no",
        "off",
    )
    if shared_budget and key and wanted and rpm <= MAX_SHARED_BUDGET_RPM:
        from airflow_provider_openrouter.api.ratelimit import key_fingerprint
        from airflow_provider_openrouter.runtime.budget import shared_budget as budget_of

        budget = budget_of(key_fingerprint(key), rpm)
    from airflow_provider_openrouter.runtime import metrics

    return OpenRouterClient(
        base_url,
        key,
        headers={
            header: str(value)
            for header, value in (
                ("HTTP-Referer", extra.get("http_referer")),
                ("X-OpenRouter-Title", extra.get("x_title")),
                ("X-OpenRouter-Categories", extra.get("categories")),
            )
            if value
        },
        timeout=_positive(extra, "timeout", DEFAULT_TIMEOUT, float, source),
        requests_per_minute=rpm,
        policy=policy,
        source=source,
        budget=budget,
        on_request=metrics.record_request,
    )


def _positive(extra: dict[str, Any], name: str, default: float, kind: type, source: str) -> float:
    """A positive number from a connection extra (``kind`` int or float), or a clear error."""
    value = extra.get(name)
    if value is None or value == "":
        return default
    try:
        number = None if isinstance(value, bool) else kind(str(value).strip())
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise InvalidParameterError(
            f"Extra {name!r} of {source} is {value!r}; it must be a positive {kind.__name__}."
        )
    return number


#: One attempt, no 429 rounds, a short deadline: what a connection test needs.
_CONNECTION_TEST_POLICY = RetryPolicy(
    max_attempts=1, max_rate_limit_retries=0, max_rate_limit_wait=0.0, deadline=10.0
)


class OpenRouterHook(BaseHook):
    """Call OpenRouter's Data API through an Airflow connection.

    Every call is paced per key, retried on transient failures with one policy (honouring
    ``Retry-After``), and validated into exact, typed rows. Errors are subclasses of
    :class:`~airflow_provider_openrouter.exceptions.OpenRouterError`.

    :param openrouter_conn_id: the ``openrouter`` connection (API key in the password field).
    :param retry_policy: override the default :class:`~airflow_provider_openrouter.api.retry.RetryPolicy`.
    """

    conn_name_attr = "openrouter_conn_id"
    default_conn_name = "openrouter_default"
    conn_type = "openrouter"
    hook_name = "OpenRouter"

    def __init__(
        self,
        openrouter_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__()
        self.openrouter_conn_id = openrouter_conn_id
        self.retry_policy = retry_policy
        self._client: OpenRouterClient | None = None
        self._analytics_client: OpenRouterClient | None = None
        self._analytics_key_source: str | None = None
        self._analytics_meta: AnalyticsMeta | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: the password is the API key; schema, port and login are unused."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"password": "API key", "host": "Base URL"},
            "placeholders": {"host": DEFAULT_BASE_URL, "password": "sk-or-..."},
        }

    def get_conn(self) -> OpenRouterClient:
        """The paced, retrying API client for this connection (created once per hook)."""
        if self._client is None:
            self._client = client_from_connection(
                self.get_connection(self.openrouter_conn_id), self.retry_policy, shared_budget=True
            )
        return self._client

    async def aget_conn(self) -> OpenRouterClient:
        """:meth:`get_conn` for the triggerer: the connection is fetched without blocking the event loop."""
        if self._client is None:
            conn = await aget_connection(self.openrouter_conn_id)
            self._client = client_from_connection(conn, self.retry_policy)
        return self._client

    def close(self) -> None:
        """Close the HTTP connections of this hook's clients (a new call reopens them)."""
        for client in {
            id(c): c for c in (self._client, self._analytics_client) if c is not None
        }.values():
            client.close()

    @property
    def request_count(self) -> int:
        """Requests this hook has sent so far, 429-rejected attempts included (counted as quota spent)."""
        clients = {id(c): c for c in (self._client, self._analytics_client) if c is not None}
        return sum(c.request_count for c in clients.values())

    @property
    def rate_limited_count(self) -> int:
        """Of :attr:`request_count`, the attempts answered 429."""
        clients = {id(c): c for c in (self._client, self._analytics_client) if c is not None}
        return sum(c.rate_limited_count for c in clients.values())

    #: A connection test makes one attempt, waits at most this many seconds for it, and never
    #: retries: an unreachable host or a wrong key answers within seconds, not after a retry ladder.
    TEST_CONNECTION_TIMEOUT = 5.0

    def test_connection(self) -> tuple[bool, str]:
        """Check the Base URL and the key with one ``GET /key``; never raises.

        The messages do not name the connection id: the UI and the REST API test unsaved
        connections under a temporary id that would mean nothing to the reader.
        """
        base_url = None
        try:
            conn = self.get_connection(self.openrouter_conn_id)
            source = "this connection"
            base_url = base_url_from_connection(conn, source)
            client = client_from_connection(conn, _CONNECTION_TEST_POLICY, source=source)
            client.timeout = min(client.timeout, self.TEST_CONNECTION_TIMEOUT)
            try:
                answer = client.get(endpoints.KEY_PATH)
            finally:
                client.close()
        except BadRequestError as exc:
            if exc.status == 404:
                return False, (
                    f"{base_url}{endpoints.KEY_PATH} does not exist (HTTP 404). Check that the Base URL ends "
                    f"with /api/v1, e.g. {DEFAULT_BASE_URL}."
                )
            return False, str(exc)
        except ServerError as exc:
            if exc.status is None:  # no answer at all: connection refused, DNS, TLS or timeout
                found = re.search(r"attempt\(s\): (.*?)\. OpenRouter", str(exc))
                return False, (
                    f"Could not reach {base_url} ({found.group(1) if found else exc}). "
                    "Check the Base URL and that this machine can reach it."
                )
            return False, str(exc)
        except OpenRouterError as exc:
            return False, str(exc)
        except Exception as exc:  # the UI shows the message, so keep it to one line
            return False, f"{type(exc).__name__}: {exc}"
        label = answer.get("data", {}).get("label") if isinstance(answer, dict) else None
        return (
            True,
            f"Connected to {client.base_url}; the API key{f' {label!r}' if label else ''} is valid.",
        )

    def get_rankings_daily(self, start_date: DayLike, end_date: DayLike) -> RankingsDaily:
        """Top-50 models per UTC day plus the ``other`` row, for one window of at most 366 days.

        ``result.clamped`` is True when the API answered a different window than asked (a start
        before 2025-01-01, or an end past the last complete day); ``result.meta`` has the answer's.
        """
        window = endpoints.request_window(start_date, end_date)
        client = self.get_conn()
        params = endpoints.window_params(window)
        payload = client.get(rankings_daily.PATH, params, decode=rankings_daily.decode)
        with client.redacting():
            result = parse_rankings_daily(payload, window)
        from airflow_provider_openrouter.runtime import lineage

        lineage.record_hook_input(self, client.base_url, rankings_daily.PATH, params)
        self.log.info(
            "rankings-daily %s: %d rows, as_of %s%s",
            window,
            len(result.rows),
            result.meta.as_of.isoformat(),
            f"; the API answered the window {result.meta.window} instead" if result.clamped else "",
        )
        return result

    # ------------------------------------------------------------------ as_of probe
    def probe_day(
        self,
        day: date,
        settle: timedelta = timedelta(0),
        *,
        deadline: float | None = None,
        latest: date | None = None,
    ) -> probe.ProbeOutcome:
        """Spend one probe on ``day``: one ``rankings-daily`` request for
        :func:`~airflow_provider_openrouter.runtime.probe.probe_window` (``day``, the days before it
        and, with ``latest`` after ``day``, on towards ``latest``), judged by
        :func:`~airflow_provider_openrouter.runtime.probe.evaluate_probe`.

        Returns :class:`~airflow_provider_openrouter.runtime.probe.Answered` (complete or not yet),
        ``NotServedYet`` (the API refused the window), ``RetryAt`` (rate limit or daily quota) or
        ``TransientFailure`` (server or network trouble past the retry policy). A rejected key, an
        invalid answer or another refusal is raised. ``deadline`` (seconds) bounds this call,
        retries and waits included, instead of the retry policy's deadline.
        """
        from airflow_provider_openrouter.runtime import metrics, probe

        client = self.get_conn()
        asked = probe.probe_window(day, latest)
        try:
            payload = client.get(
                rankings_daily.PATH, endpoints.window_params(asked), deadline=deadline
            )
        except OpenRouterError as exc:
            return metrics.counted_probe(_probe_refusal(exc, day))
        return metrics.counted_probe(_probe_answer(client, payload, day, settle, asked))

    async def aprobe_day(
        self, day: date, settle: timedelta = timedelta(0), *, deadline: float | None = None
    ) -> probe.ProbeOutcome:
        """:meth:`probe_day` for the triggerer: the same request, policy and outcomes, without blocking."""
        from airflow_provider_openrouter.runtime import metrics, probe

        client = await self.aget_conn()
        asked = probe.probe_window(day)
        try:
            payload = await client.aget(
                rankings_daily.PATH, endpoints.window_params(asked), deadline=deadline
            )
        except OpenRouterError as exc:
            return metrics.counted_probe(_probe_refusal(exc, day))
        return metrics.counted_probe(_probe_answer(client, payload, day, settle, asked))

    def get_app_rankings(
        self,
        start_date: DayLike,
        end_date: DayLike,
        sort: str = "popular",
        category: str | None = None,
        subcategory: str | None = None,
        max_apps: int = 50,
    ) -> AppRankings:
        """Top apps inside a window, paging with ``limit``/``offset`` (ranks stay absolute).

        At most 200 apps are reachable; ``result.capped`` is True when that ceiling was hit.
        Paging stops early when a page comes back short (``trending`` omits apps without growth).
        """
        validate_app_params(sort, category, subcategory, max_apps)
        window = endpoints.request_window(start_date, end_date)
        client = self.get_conn()
        pages = []
        sent = []
        for offset, limit in app_rankings.app_pages(max_apps):
            params = app_rankings.app_page_params(
                window,
                sort=sort,
                category=category,
                subcategory=subcategory,
                offset=offset,
                limit=limit,
            )
            payload = client.get(app_rankings.PATH, params, decode=app_rankings.decode)
            with client.redacting():
                pages.append(parse_app_rankings_page(payload, offset))
            sent.append(params)
            if len(pages[-1][1]) < limit:
                break
        total = sum(len(rows) for _, rows in pages)
        with client.redacting():
            result = join_app_pages(pages, window, capped=total >= APP_CEILING, requests=sent)
        query = {k: v for k, v in sent[0].items() if k not in ("limit", "offset")}
        from airflow_provider_openrouter.runtime import lineage

        lineage.record_hook_input(
            self, client.base_url, app_rankings.PATH, {**query, "max_apps": max_apps}
        )
        self.log.info(
            "app-rankings %s sort=%s category=%s subcategory=%s: %d apps in %d request(s), as_of %s",
            window,
            sort,
            category,
            subcategory,
            total,
            len(sent),
            result.meta.as_of.isoformat(),
        )
        return result

    def get_session_cost(
        self,
        app_slug: str | None = None,
        model: str | None = None,
        turn_range: str | None = None,
        max_cells: int = session_cost.DEFAULT_MAX_CELLS,
    ) -> session_cost.SessionCost:
        """Median cost per session by harness, model and turn range: the current weekly snapshot.

        Pages with ``limit``/``offset`` (500 cells per page) until a page comes back short or
        ``max_cells`` (1-5500) is reached. ``result.capped`` is True when the API's offset ceiling
        (5500 cells) was hit, ``result.truncated`` when ``max_cells`` was, with more cells possible.
        ``result.meta.published`` is False (and ``rows`` empty) when no snapshot is published.
        Parameters are checked before any request; pages from different snapshots, duplicate
        cells, unknown turn ranges or cells outside the filters raise ``InvalidResponseError``.
        """
        session_cost.validate_params(app_slug, model, turn_range, max_cells)
        client = self.get_conn()
        pages = []
        sent = []
        full = False
        for offset, limit in session_cost.pages(max_cells):
            params = session_cost.page_params(
                app_slug=app_slug, model=model, turn_range=turn_range, offset=offset, limit=limit
            )
            payload = client.get(session_cost.PATH, params)
            with client.redacting():
                pages.append(
                    session_cost.parse_page(
                        payload, offset, app_slug=app_slug, model=model, turn_range=turn_range
                    )
                )
            sent.append(params)
            full = len(pages[-1][1]) >= limit
            if (
                not full
                or not pages[-1][0].published
                or pages[-1][0].snapshot != pages[0][0].snapshot
            ):
                break  # done, or a new snapshot appeared mid-way (join_pages says so): no further request
        total = sum(len(rows) for _, rows in pages)
        with client.redacting():
            result = session_cost.join_pages(
                pages,
                capped=full and total >= session_cost.CEILING,
                truncated=full and total < session_cost.CEILING,
                requests=sent,
            )
        self.log.info(
            "session-cost app_slug=%s model=%s turn_range=%s: %d cell(s) in %d request(s), %s%s",
            app_slug,
            model,
            turn_range,
            total,
            len(sent),
            result.meta.describe(),
            "; the API's ceiling of 5500 cells was reached"
            if result.capped
            else (
                f"; max_cells={max_cells} reached, more cells may exist" if result.truncated else ""
            ),
        )
        return result

    # ------------------------------------------------------------------ session-cost probe
    def probe_session_cost(
        self, *, deadline: float | None = None
    ) -> session_cost.SessionCostMeta | probe.RetryAt | probe.TransientFailure:
        """Spend one probe on which session-cost snapshot is published: one cell, no filter.

        Returns the answer's validated ``meta`` (``meta.published`` False when none is),
        :class:`~airflow_provider_openrouter.runtime.probe.RetryAt` (rate limit or daily quota) or
        ``TransientFailure`` (server or network trouble past the retry policy). A rejected key, an
        invalid answer or another refusal is raised. ``deadline`` (seconds) bounds this call.
        """
        client = self.get_conn()
        try:
            payload = client.get(
                session_cost.PATH, dict(session_cost.PROBE_PARAMS), deadline=deadline
            )
        except OpenRouterError as exc:
            return _session_cost_refusal(exc)
        with client.redacting():
            return session_cost.parse_probe(payload)

    async def aprobe_session_cost(
        self, *, deadline: float | None = None
    ) -> session_cost.SessionCostMeta | probe.RetryAt | probe.TransientFailure:
        """:meth:`probe_session_cost` for the triggerer: the same request, policy and outcomes."""
        client = await self.aget_conn()
        try:
            payload = await client.aget(
                session_cost.PATH, dict(session_cost.PROBE_PARAMS), deadline=deadline
            )
        except OpenRouterError as exc:
            return _session_cost_refusal(exc)
        with client.redacting():
            return session_cost.parse_probe(payload)

    # ------------------------------------------------------------------ analytics (beta)
    #: Extra holding the management key itself. Airflow hides extras whose name contains
    #: ``api_key`` in the UI, the API and logs; the hook masks it explicitly as well.
    MANAGEMENT_KEY_EXTRA = "management_api_key"
    #: Extra naming another connection whose password field holds the management key.
    MANAGEMENT_CONN_EXTRA = "management_conn_id"

    def get_analytics_client(self) -> OpenRouterClient:
        """The client for the analytics API, which needs an OpenRouter *management* key.

        Where the key comes from, first match wins:

        1. extra ``management_conn_id`` of this connection: the id of another ``openrouter``
           connection whose password is the management key (its own host/extras apply);
        2. extra ``management_api_key`` of this connection: the management key itself (host,
           timeout, pacing and attribution extras of this connection apply);
        3. neither: this connection's own API key (works if it *is* a management key; a plain key
           gets a 403, turned into an error that says where to put a management key).

        The key is masked (``mask_secret``), paced with its own per-key limiter, and scrubbed from
        every error like the main key; it never appears in logs or messages.
        """
        if self._analytics_client is None:
            from airflow.sdk import Connection

            conn = self.get_connection(self.openrouter_conn_id)
            extra = conn.extra_dejson or {}
            other_id = extra.get(self.MANAGEMENT_CONN_EXTRA)
            key = extra.get(self.MANAGEMENT_KEY_EXTRA)
            if other_id:
                other = self.get_connection(str(other_id))
                where = f"the password of connection {other.conn_id!r} (named by extra {self.MANAGEMENT_CONN_EXTRA!r})"
                client = client_from_connection(other, self.retry_policy, shared_budget=True)
            elif key:
                if not isinstance(key, str):
                    raise InvalidParameterError(
                        f"Extra {self.MANAGEMENT_KEY_EXTRA!r} of connection {conn.conn_id!r} must be a string (the management key)."
                    )
                where = f"extra {self.MANAGEMENT_KEY_EXTRA!r} of connection {conn.conn_id!r}"
                stand_in = Connection(
                    conn_id=conn.conn_id,
                    conn_type=conn.conn_type,
                    host=conn.host,
                    password=key,
                    extra=conn.extra,
                )
                client = client_from_connection(
                    stand_in, self.retry_policy, shared_budget=True
                )  # masks the key, parses the extras
            else:
                where, client = None, self.get_conn()
            if where is not None:
                client.source = f"the management key in {where}"
            self._analytics_client, self._analytics_key_source = client, where
        return self._analytics_client

    @contextmanager
    def _analytics_errors(self, client: OpenRouterClient) -> Iterator[None]:
        """Scrub the key from errors and explain a 401/403 in terms of the management key."""
        try:
            with client.redacting():
                yield
        except AuthenticationError as exc:
            where = self._analytics_key_source
            how = (
                f"put a management key in the extra {self.MANAGEMENT_KEY_EXTRA!r} of connection "
                f"{self.openrouter_conn_id!r}, or set its extra {self.MANAGEMENT_CONN_EXTRA!r} to a connection "
                "whose password is the management key. Create one in OpenRouter under Settings > Management keys."
            )
            if exc.status == 403 and where is None:
                message = (
                    f"OpenRouter's analytics API needs a management key, and the API key of connection "
                    f"{self.openrouter_conn_id!r} is not one (HTTP 403). To fix it, {how}"
                )
            elif exc.status == 403:
                message = f"OpenRouter refused the key in {where} for the analytics API (HTTP 403): it is not a management key. To fix it, {how}"
            elif where is not None:
                message = f"OpenRouter rejected the management key in {where} (HTTP 401): it is invalid or revoked. To fix it, {how}"
            else:
                raise
            raise AuthenticationError(message, status=exc.status) from exc

    def get_analytics_meta(self) -> AnalyticsMeta:
        """Metrics, dimensions, granularities and operators of ``GET /analytics/meta``.

        Fetched once per hook instance (one task run) and cached; every query is validated against it.
        """
        if self._analytics_meta is None:
            from airflow_provider_openrouter.analytics.query import (
                ANALYTICS_META_PATH,
                parse_analytics_meta,
            )

            client = self.get_analytics_client()
            with self._analytics_errors(client):
                self._analytics_meta = parse_analytics_meta(
                    client.request("GET", ANALYTICS_META_PATH)
                )
            self.log.info(
                "analytics meta: %d metrics, %d dimensions, granularities %s",
                len(self._analytics_meta.metrics),
                len(self._analytics_meta.dimensions),
                ",".join(self._analytics_meta.granularities),
            )
        return self._analytics_meta

    def execute_analytics_query(self, query: AnalyticsQuery) -> AnalyticsResult:
        """One ``POST /analytics/query`` for a validated query; the answer may be ``incomplete``.

        :raises InvalidParameterError: the query does not fit the meta answer (no request spent on it).
        :raises QueryTimeoutError: HTTP 408; ask for a smaller time range.
        """
        from airflow_provider_openrouter.analytics.query import (
            ANALYTICS_QUERY_PATH,
            parse_query_response,
            validate_query,
        )
        from airflow_provider_openrouter.runtime import lineage

        meta = self.get_analytics_meta()
        validate_query(query, meta)
        client = self.get_analytics_client()
        with self._analytics_errors(client):
            result = parse_query_response(
                client.request("POST", ANALYTICS_QUERY_PATH, json_body=query.to_body()), query
            )
        # one input per query shape, not per time slice (a split query asks many slices)
        shape = {
            "metrics": ",".join(query.metrics),
            "dimensions": ",".join(query.dimensions or ()),
            "granularity": query.granularity,
        }
        lineage.record_hook_input(self, client.base_url, ANALYTICS_QUERY_PATH, shape)
        self.log.info(
            "analytics %s: %d rows%s",
            query.describe(),
            len(result.rows),
            f" (INCOMPLETE: truncated, row_count {result.metadata.row_count})"
            if result.incomplete
            else "",
        )
        return result

    def query_analytics(
        self,
        metrics: Sequence[str],
        dimensions: Sequence[str] | None = None,
        filters: Sequence[Any] | None = None,
        granularity: str | None = None,
        time_range: Any = None,
        limit: int | None = None,
        group_limit: int | None = None,
        order_by: Mapping[str, str] | None = None,
    ) -> AnalyticsResult:
        """Run one analytics query (management key needed; see :meth:`get_analytics_client`).

        ``filters``: ``{"field", "operator", "value"}`` dicts (``in``/``not_in`` take lists);
        ``time_range``: ``(start, end)`` or ``{"start", "end"}`` of aware datetimes or
        ``YYYY-MM-DDTHH:MM:SSZ`` strings, half-open; ``order_by``: ``{"field", "direction"}``.
        The answer can be truncated at ``limit`` (``result.incomplete``): use
        :meth:`query_analytics_complete` for a guaranteed complete answer.
        """
        from airflow_provider_openrouter.analytics.query import AnalyticsQuery

        query = AnalyticsQuery(
            metrics=metrics,  # type: ignore[arg-type]
            dimensions=dimensions,  # type: ignore[arg-type]
            filters=filters,  # type: ignore[arg-type]
            granularity=granularity,
            time_range=time_range,
            limit=limit,
            group_limit=group_limit,
            order_by=order_by,  # type: ignore[arg-type]
        )
        return self.execute_analytics_query(query)

    def query_analytics_complete(
        self,
        query: AnalyticsQuery,
        *,
        min_slice: timedelta = DEFAULT_MIN_SLICE,
        max_requests: int = DEFAULT_MAX_REQUESTS,
    ) -> AnalyticsResult:
        """Every row of ``query``: on HTTP 408 or a truncated answer the time range is halved
        (at granularity boundaries) down to ``min_slice`` and the slices are merged exactly.

        Refuses (``OpenRouterError``) rather than return anything incomplete or wrong: a slice of
        ``min_slice`` still truncated, more than ``max_requests`` requests, or a rate metric
        (``is_rate``) whose rows would span slices. See :mod:`airflow_provider_openrouter.analytics.split`.
        ``limit`` is the page size of each request; ``result.slices`` lists the ranges requested.
        """
        from airflow_provider_openrouter.analytics.query import validate_query
        from airflow_provider_openrouter.analytics.split import (
            check_complete_query,
            collect_complete,
        )

        check_complete_query(query, min_slice)  # before any request, the meta one included
        meta = self.get_analytics_meta()
        validate_query(query, meta)
        return collect_complete(
            query,
            meta,
            self.execute_analytics_query,
            min_slice=min_slice,
            max_requests=max_requests,
            logger=self.log,
        )


def _probe_answer(
    client: OpenRouterClient, payload: Any, day: date, settle: timedelta, asked: Window
) -> probe.ProbeOutcome:
    from airflow_provider_openrouter.runtime import probe

    with client.redacting():
        return probe.Answered(probe.evaluate_probe(payload, day, settle, asked))


def _probe_refusal(error: OpenRouterError, day: date) -> probe.ProbeOutcome:
    """The outcome an error of the probe request stands for; errors no later probe can cure are raised."""
    from airflow_provider_openrouter.runtime import probe

    if isinstance(error, RateLimitedError):
        return probe.RetryAt(error.retry_at, str(error))
    if isinstance(error, BadRequestError) and probe.is_not_served_yet(error):
        return probe.NotServedYet(probe.ProbeResult(day, False, None, None), error.api_message)
    if isinstance(error, ServerError):
        return probe.TransientFailure(str(error))
    raise error


def _session_cost_refusal(error: OpenRouterError) -> probe.RetryAt | probe.TransientFailure:
    """The outcome an error of the session-cost probe stands for; errors no later probe can cure are raised."""
    from airflow_provider_openrouter.runtime import probe

    if isinstance(error, RateLimitedError):
        return probe.RetryAt(error.retry_at, str(error))
    if isinstance(error, ServerError):
        return probe.TransientFailure(str(error))
    raise error
