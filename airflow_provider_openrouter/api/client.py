"""The one HTTP path to OpenRouter: pacing, retries, ``Retry-After`` and error mapping.

The whole conversation for one call (pace, send, classify, wait, retry or raise) is written once,
as a generator that yields :class:`Send` and :class:`Sleep` actions. Two tiny drivers carry the
actions out: :meth:`OpenRouterClient.request` with ``httpx.Client`` and ``time.sleep`` for hooks,
:meth:`OpenRouterClient.arequest` with ``httpx.AsyncClient`` and ``asyncio.sleep`` for triggers.
No policy is duplicated between them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, Union, cast

import httpx

from airflow_provider_openrouter import __version__
from airflow_provider_openrouter.api.answers import Decoder, loads_exact
from airflow_provider_openrouter.api.ratelimit import key_fingerprint, limiter_for
from airflow_provider_openrouter.api.retry import (
    RetryPolicy,
    is_daily_quota_message,
    is_retryable_status,
    next_utc_midnight,
    parse_retry_after,
)
from airflow_provider_openrouter.exceptions import (
    AuthenticationError,
    BadRequestError,
    InvalidResponseError,
    OpenRouterError,
    QueryTimeoutError,
    QuotaExhaustedError,
    RateLimitedError,
    ServerError,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_TIMEOUT = 60.0
DEFAULT_REQUESTS_PER_MINUTE = 30


@dataclass(frozen=True)
class Send:
    """Action: perform this HTTP request and send back the response (or the transport error)."""

    method: str
    path: str
    params: Mapping[str, Any] | None
    json: Any = None


@dataclass(frozen=True)
class Sleep:
    """Action: wait this many seconds, then resume."""

    seconds: float


class Budget(Protocol):
    """Pacing shared by processes: book the next request, return the seconds to wait for it."""

    def reserve(self) -> float: ...


Outcome = Union[httpx.Response, httpx.TransportError]
Conversation = Generator[Union[Send, Sleep], Outcome | None, Any]


class OpenRouterClient:
    """A paced, retrying JSON client for one API key. Safe to ``repr`` and log: the key never shows.

    :param base_url: API root with scheme, e.g. ``https://openrouter.ai/api/v1``.
    :param api_key: the bearer key; it is only ever placed in the ``Authorization`` header.
    :param headers: extra headers (attribution: ``HTTP-Referer``, ``X-OpenRouter-Title``, ...).
    :param timeout: seconds for connect/read of one attempt.
    :param requests_per_minute: in-process pacing for this key.
    :param policy: the :class:`RetryPolicy`.
    :param source: how to name the credentials in error messages (e.g. a connection id).
    :param on_request: called after every attempt with ``(method, path, status)`` (``status`` None
        when no answer came: a transport error); the hook passes its metrics here. Never fails a call.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
        policy: RetryPolicy | None = None,
        source: str = "the OpenRouter connection",
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        budget: Budget | None = None,
        on_request: Callable[[str, str, int | None], None] | None = None,
    ) -> None:
        if not api_key:
            raise AuthenticationError(
                f"No API key in {source}: put your OpenRouter key in its password field (labelled 'API key').",
                status=401,
            )
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.key_fingerprint = key_fingerprint(api_key)
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.source = source
        self._limiter = limiter_for(api_key, requests_per_minute)
        #: pacing shared with other processes (blocking: sync callers only), see api/budget.py
        self.budget = budget
        self._clock = clock
        self.on_request = on_request
        self._headers = {
            "Accept": "application/json",
            "User-Agent": f"airflow-provider-openrouter/{__version__}",
            **{k: v for k, v in (headers or {}).items() if v},
            "Authorization": f"Bearer {api_key}",
        }
        self._sync: httpx.Client | None = None
        #: Requests actually sent, every attempt, 429s included: whether OpenRouter counts a rejected
        #: request against the daily quota is undocumented, so they are counted as spent (the upper bound).
        self.request_count = 0
        #: Of those, the ones answered 429 (rejected by the per-minute limit).
        self.rate_limited_count = 0
        self.requests_by_path: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"OpenRouterClient(base_url={self.base_url!r}, key=<{self.key_fingerprint}>)"

    # ----------------------------------------------------------------- drivers
    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        *,
        deadline: float | None = None,
        decode: Decoder = loads_exact,
    ) -> Any:
        """Perform one API call synchronously and return its decoded JSON body.

        ``deadline`` (seconds) bounds this call only, in place of the policy's own deadline.
        ``decode`` turns a 200 answer's bytes into the value returned (default: JSON with exact
        Decimal floats); it raises ``ValueError`` when the body is not JSON, which is retried.
        """
        if self._sync is None:
            self._sync = httpx.Client(headers=self._headers, timeout=self.timeout)
        conversation = self._conversation(Send(method, path, params, json_body), deadline, decode)
        try:
            action = next(conversation)
            while True:
                if isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    action = conversation.send(None)
                else:
                    action = conversation.send(self._send_sync(action))
        except StopIteration as done:
            return done.value

    async def arequest(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        *,
        deadline: float | None = None,
        decode: Decoder = loads_exact,
    ) -> Any:
        """Perform one API call asynchronously (for triggers) with the same policy as :meth:`request`."""
        async with httpx.AsyncClient(headers=self._headers, timeout=self.timeout) as client:
            conversation = self._conversation(
                Send(method, path, params, json_body), deadline, decode
            )
            try:
                action = next(conversation)
                while True:
                    if isinstance(action, Sleep):
                        await asyncio.sleep(action.seconds)
                        action = conversation.send(None)
                    else:
                        try:
                            outcome: Outcome = await client.request(
                                action.method,
                                self.base_url + action.path,
                                params=action.params,
                                json=action.json,
                            )
                        except httpx.TransportError as exc:
                            outcome = exc
                        action = conversation.send(outcome)
            except StopIteration as done:
                return done.value

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        decode: Decoder = loads_exact,
    ) -> Any:
        return self.request("GET", path, params, deadline=deadline, decode=decode)

    async def aget(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        deadline: float | None = None,
        decode: Decoder = loads_exact,
    ) -> Any:
        return await self.arequest("GET", path, params, deadline=deadline, decode=decode)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _send_sync(self, action: Send) -> Outcome:
        assert self._sync is not None
        try:
            return self._sync.request(
                action.method, self.base_url + action.path, params=action.params, json=action.json
            )
        except httpx.TransportError as exc:
            return exc

    # ------------------------------------------------------------ the policy
    def _conversation(
        self, send: Send, deadline: float | None = None, decode: Decoder = loads_exact
    ) -> Conversation:
        """Everything about one call except doing I/O: pacing, retries, waits, errors.

        ``deadline`` replaces the policy's deadline for this call only (the shared policy is not changed).
        """
        policy = self.policy if deadline is None else replace(self.policy, deadline=deadline)
        started = time.monotonic()
        what = _describe(send)
        failures = 0
        rate_limited = 0
        rate_limit_waited = 0.0
        while True:
            pace = self._limiter.reserve()
            if self.budget is not None:
                pace = max(pace, self.budget.reserve())
            if pace > 0:
                log.info(
                    "Pacing %s: waiting %.1f s for a free slot of this key's per-minute limit.",
                    what,
                    pace,
                )
                yield Sleep(pace)
            outcome = yield send
            self.request_count += 1
            self.requests_by_path[send.path] += 1
            if self.on_request is not None:
                self._report(send, outcome)
            now = self._clock()
            if isinstance(outcome, httpx.TransportError):
                problem = f"{type(outcome).__name__} ({self._redact(str(outcome)) or 'no detail'})"
                failures += 1
                wait = policy.backoff(failures)
                if failures >= policy.max_attempts or not _fits(started, wait, policy):
                    raise ServerError(
                        f"{what} failed after {failures} attempt(s): {problem}. "
                        "OpenRouter or the network is unavailable; the task can be retried later."
                    )
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s.",
                    what,
                    problem,
                    failures,
                    policy.max_attempts - 1,
                    wait,
                )
                yield Sleep(wait)
                continue

            response = cast(
                httpx.Response, outcome
            )  # the drivers answer every Send with an Outcome
            status = response.status_code
            if status == 200:
                body, unreadable = _decode(response, decode)
                if unreadable is None:
                    return body
                failures += 1
                wait = policy.backoff(failures)
                if failures >= policy.max_attempts or not _fits(started, wait, policy):
                    raise InvalidResponseError(
                        f"Invalid response from OpenRouter to {what}: {unreadable} (after {failures} attempt(s)). "
                        "Nothing was written.",
                        field="body",
                    )
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s.",
                    what,
                    unreadable,
                    failures,
                    policy.max_attempts - 1,
                    wait,
                )
                yield Sleep(wait)
                continue

            message = self._redact(_api_message(response))
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
            if status == 429:
                if (
                    retry_after is not None and retry_after > policy.max_retry_after
                ) or is_daily_quota_message(message):
                    retry_at = (
                        now + timedelta(seconds=retry_after)
                        if retry_after is not None
                        else next_utc_midnight(now)
                    )
                    raise QuotaExhaustedError(
                        f"OpenRouter's daily request quota is exhausted ({message}); requests succeed again from "
                        f"{retry_at.isoformat()}. The account allows 500 requests per UTC day across all keys.",
                        retry_at=retry_at,
                    )
                rate_limited += 1
                self.rate_limited_count += 1
                wait = (
                    policy.after_retry_after(retry_after)
                    if retry_after is not None
                    else policy.backoff(rate_limited)
                )
                rate_limit_waited += wait
                if (
                    rate_limited > policy.max_rate_limit_retries
                    or rate_limit_waited > policy.max_rate_limit_wait
                    or not _fits(started, wait, policy)
                ):
                    raise RateLimitedError(
                        f"{what} was rate limited {rate_limited} time(s) ({message}). Lower requests_per_minute on "
                        "the connection or limit concurrency with an Airflow pool; retry after the advertised time.",
                        retry_at=now + timedelta(seconds=wait),
                    )
                log.warning(
                    "%s: 429 (%s); waiting %.1f s (%s) before retry %d.",
                    what,
                    message,
                    wait,
                    "Retry-After" if retry_after is not None else "backoff",
                    rate_limited,
                )
                yield Sleep(wait)
                continue

            if is_retryable_status(status):
                failures += 1
                wait = max(policy.backoff(failures), min(retry_after or 0.0, policy.backoff_max))
                if failures >= policy.max_attempts or not _fits(started, wait, policy):
                    raise ServerError(
                        f"{what} failed after {failures} attempt(s): HTTP {status} ({message}). "
                        "OpenRouter is having trouble; the task can be retried later.",
                        status=status,
                    )
                log.warning(
                    "%s: HTTP %d (%s); retry %d/%d in %.1f s.",
                    what,
                    status,
                    message,
                    failures,
                    policy.max_attempts - 1,
                    wait,
                )
                yield Sleep(wait)
                continue

            if status == 401:
                raise AuthenticationError(
                    f"OpenRouter rejected the key of {self.source}: invalid API key ({message}). "
                    "Put a valid key in the connection's 'API key' (password) field.",
                    status=status,
                )
            if status == 403:
                raise AuthenticationError(
                    f"OpenRouter refused {what} for the key of {self.source} (HTTP 403: {message}). "
                    "The key lacks the permission this endpoint needs.",
                    status=status,
                )
            if status == 408:
                raise QueryTimeoutError(
                    f"OpenRouter timed out answering {what} (HTTP 408: {message}). Ask for a smaller time range."
                )
            raise BadRequestError(
                f"OpenRouter rejected {what} (HTTP {status}): {message}. Fix the parameters; retrying will not help.",
                status=status,
                api_message=message,
            )

    def _report(self, send: Send, outcome: Outcome | None) -> None:
        status = outcome.status_code if isinstance(outcome, httpx.Response) else None
        try:
            self.on_request(send.method, send.path, status)  # type: ignore[misc]
        except Exception:  # an observer never fails the call it observes
            log.debug(
                "on_request callback failed for %s %s.", send.method, send.path, exc_info=True
            )

    @contextmanager
    def redacting(self) -> Iterator[None]:
        """Scrub the key from any :class:`OpenRouterError` raised inside (e.g. validation echoing a response)."""
        try:
            yield
        except OpenRouterError as exc:
            text = str(exc)
            if self._api_key in text:
                exc.args = (self._redact(text),)
            raise

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key in text else text


def _describe(send: Send) -> str:
    query = "&".join(f"{k}={v}" for k, v in (send.params or {}).items() if v is not None)
    return f"{send.method} {send.path}" + (f"?{query}" if query else "")


def _fits(started: float, wait: float, policy: RetryPolicy) -> bool:
    """Whether waiting ``wait`` more seconds still ends before the call's absolute deadline."""
    return time.monotonic() - started + wait <= policy.deadline


def _decode(response: httpx.Response, decode: Decoder) -> tuple[Any, str | None]:
    """The decoded body, or a description of why it is unreadable (not JSON)."""
    try:
        return decode(response.content), None
    except (ValueError, UnicodeDecodeError):
        kind = response.headers.get("content-type", "unknown content type")
        return None, f"the body is not valid JSON ({kind}, {len(response.content)} bytes)"


def _api_message(response: httpx.Response) -> str:
    """The API's error message, or a short description of a non-JSON (e.g. proxy HTML) answer."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:500]
        if isinstance(error, str):
            return error[:500]
    kind = response.headers.get("content-type", "no content type")
    return f"{response.reason_phrase or 'error'}, {kind} body of {len(response.content)} bytes"
