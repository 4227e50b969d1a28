"""The provider's error hierarchy: one base class, one subclass per thing that can go wrong.

Every message names what was wrong and what to do. None of them ever contains the API key.
"""

from __future__ import annotations

from datetime import datetime

from airflow_provider_openrouter.compat import AirflowException


class OpenRouterError(AirflowException):
    """Base class of every error raised by this provider."""


class InvalidParameterError(OpenRouterError, ValueError):
    """A parameter was rejected locally, before any request was spent on it."""


class BadRequestError(OpenRouterError):
    """The API answered 400 (or another non-retryable 4xx): the request itself is wrong."""

    def __init__(self, message: str, *, status: int = 400, api_message: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.api_message = api_message


class AuthenticationError(OpenRouterError):
    """The API answered 401 or 403: the key is missing, invalid, or lacks the permission."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class RateLimitedError(OpenRouterError):
    """The API kept answering 429 after the retries allowed by the policy.

    ``retry_at`` is the earliest time (UTC) at which a new attempt can succeed, when known.
    """

    def __init__(self, message: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class QuotaExhaustedError(RateLimitedError):
    """The account's daily request quota is spent; ``retry_at`` says when it renews (UTC)."""

    retry_at: datetime

    def __init__(self, message: str, *, retry_at: datetime) -> None:
        super().__init__(message, retry_at=retry_at)


class ServerError(OpenRouterError):
    """5xx answers, timeouts or dropped connections persisted past the retry policy."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class QueryTimeoutError(OpenRouterError):
    """The API answered 408: the query ran too long. Retrying the same query will not help;
    ask for a smaller time range."""


class InvalidResponseError(OpenRouterError):
    """A response failed validation; ``field`` and ``row`` locate the problem when known."""

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.row = row


class WindowNotCompleteError(OpenRouterError):
    """The requested window reaches a UTC day whose data is not final yet."""
