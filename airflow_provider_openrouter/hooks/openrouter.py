"""OpenRouterHook: an Airflow connection of type ``openrouter`` turned into typed dataset calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_openrouter import endpoints
from airflow_provider_openrouter.catalog import APP_CEILING, validate_app_params
from airflow_provider_openrouter.client import (
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TIMEOUT,
    OpenRouterClient,
)
from airflow_provider_openrouter.exceptions import InvalidParameterError, OpenRouterError
from airflow_provider_openrouter.retry import RetryPolicy
from airflow_provider_openrouter.validation import (
    AppRankings,
    RankingsDaily,
    join_app_pages,
    parse_app_rankings_page,
    parse_rankings_daily,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_openrouter.endpoints import DayLike


def client_from_connection(conn: Connection, policy: RetryPolicy | None = None) -> OpenRouterClient:
    """Build the API client from a connection (shared by the hook and the async trigger).

    ``host`` is the base URL (scheme optional, default ``https://openrouter.ai/api/v1``), ``password``
    the API key; extras ``http_referer``, ``x_title``, ``categories``, ``timeout``, ``requests_per_minute``.
    """
    extra = conn.extra_dejson or {}
    source = f"connection {conn.conn_id!r}"
    host = (conn.host or "").strip()
    if not host:
        base_url = DEFAULT_BASE_URL
    elif "://" in host:
        base_url = host
    else:
        base_url = "https://" + host
    key = conn.password or ""
    if key:
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(key)
        except ImportError:  # pragma: no cover - older task SDKs
            pass
    return OpenRouterClient(
        base_url,
        key,
        headers={
            "HTTP-Referer": extra.get("http_referer"),
            "X-OpenRouter-Title": extra.get("x_title"),
            "X-OpenRouter-Categories": extra.get("categories"),
        },
        timeout=_positive(extra, "timeout", DEFAULT_TIMEOUT, float, source),
        requests_per_minute=int(_positive(extra, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE, int, source)),
        policy=policy,
        source=source,
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
        raise InvalidParameterError(f"Extra {name!r} of {source} is {value!r}; it must be a positive {kind.__name__}.")
    return number


class OpenRouterHook(BaseHook):
    """Call OpenRouter's Data API through an Airflow connection.

    Every call is paced per key, retried on transient failures with one policy (honouring
    ``Retry-After``), and validated into exact, typed rows. Errors are subclasses of
    :class:`~airflow_provider_openrouter.exceptions.OpenRouterError`.

    :param openrouter_conn_id: the ``openrouter`` connection (API key in the password field).
    :param retry_policy: override the default :class:`~airflow_provider_openrouter.retry.RetryPolicy`.
    """

    conn_name_attr = "openrouter_conn_id"
    default_conn_name = "openrouter_default"
    conn_type = "openrouter"
    hook_name = "OpenRouter"

    def __init__(self, openrouter_conn_id: str = default_conn_name, *, retry_policy: RetryPolicy | None = None) -> None:
        super().__init__()
        self.openrouter_conn_id = openrouter_conn_id
        self.retry_policy = retry_policy
        self._client: OpenRouterClient | None = None

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
            self._client = client_from_connection(self.get_connection(self.openrouter_conn_id), self.retry_policy)
        return self._client

    @property
    def request_count(self) -> int:
        """Requests this hook has sent so far (each one counts against the daily quota)."""
        return self._client.request_count if self._client is not None else 0

    def test_connection(self) -> tuple[bool, str]:
        """Check the key with ``GET /key``; never raises."""
        try:
            client = self.get_conn()
            answer = client.get(endpoints.KEY_PATH)
        except OpenRouterError as exc:
            return False, str(exc)
        except Exception as exc:  # the UI shows the message, so keep it to one line
            return False, f"{type(exc).__name__}: {exc}"
        label = answer.get("data", {}).get("label") if isinstance(answer, dict) else None
        return True, f"Connected to {client.base_url}; the API key{f' {label!r}' if label else ''} is valid."

    def get_rankings_daily(self, start_date: DayLike, end_date: DayLike) -> RankingsDaily:
        """Top-50 models per UTC day plus the ``other`` row, for one window of at most 366 days.

        ``result.clamped`` is True when the API answered a different window than asked (a start
        before 2025-01-01, or an end past the last complete day); ``result.meta`` has the answer's.
        """
        window = endpoints.request_window(start_date, end_date)
        client = self.get_conn()
        payload = client.get(endpoints.RANKINGS_DAILY_PATH, endpoints.window_params(window))
        with client.redacting():
            result = parse_rankings_daily(payload, window)
        self.log.info(
            "rankings-daily %s: %d rows, as_of %s%s",
            window, len(result.rows), result.meta.as_of.isoformat(),
            f"; the API answered the window {result.meta.window} instead" if result.clamped else "",
        )
        return result

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
        for offset, limit in endpoints.app_pages(max_apps):
            params = endpoints.app_page_params(
                window, sort=sort, category=category, subcategory=subcategory, offset=offset, limit=limit
            )
            payload = client.get(endpoints.APP_RANKINGS_PATH, params)
            with client.redacting():
                pages.append(parse_app_rankings_page(payload, offset))
            sent.append(params)
            if len(pages[-1][1]) < limit:
                break
        total = sum(len(rows) for _, rows in pages)
        with client.redacting():
            result = join_app_pages(pages, window, capped=total >= APP_CEILING, requests=sent)
        self.log.info(
            "app-rankings %s sort=%s category=%s subcategory=%s: %d apps in %d request(s), as_of %s",
            window, sort, category, subcategory, total, len(sent), result.meta.as_of.isoformat(),
        )
        return result
