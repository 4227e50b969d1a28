"""Coalesced rankings-daily fetching: one request per calendar-year chunk, shared by every run.

A backfill of ``openrouter_daily`` over the whole history would cost one request per run if each
run fetched its own day. Instead, a run that needs days of year Y fetches the *chunk* of Y (from
1 January, or the dataset's first day, to 31 December or the last complete day: at most 366 days,
one request) and keeps the validated answer in the object store under the output base::

    {output_uri}/_cache/rankings_daily/chunk=START_END/response.json
    {output_uri}/_cache/rankings_daily/lease-YYYY.json        (single-flight lease, short-lived)

Later runs whose days the chunk covers read it instead of asking again. Each run still writes only
its own partitions, from the same rows the API returned, so the data files are byte-identical to
one-request-per-day fetching.

Trust rules (a cache entry is never trusted blindly):

* an entry is read back, its checksum (over the body's bytes as stored) verified, its ``meta``
  and the rows of the days the run needs validated again
  (:func:`~airflow_provider_openrouter.api.datasets.rankings_daily.parse_rankings_daily`); an entry written by
  another cache format, corrupted or truncated is ignored (and replaced by the next fetch);
* a day of an entry is *final* when the snapshot was taken ``restatement_days`` or more after the
  day ended (OpenRouter revises recent days); younger days are trusted only while the entry is
  *fresh* (fetched less than ``fresh_for`` ago, e.g. earlier in the same backfill), else refetched.

Single flight: runs that miss at the same time elect one fetcher with a lease object (written,
then read back after a short settle time: the last writer wins on any store, no atomic create
needed); the others poll the cache until the entry appears or the lease expires, then try again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import msgspec
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.api.datasets.rankings_daily import (
    RankingsDaily,
    parse_rankings_daily,
)
from airflow_provider_openrouter.exceptions import InvalidParameterError, InvalidResponseError
from airflow_provider_openrouter.lake.storage import (
    list_names,
    read_bytes,
    refresh,
    remove,
    write_atomic,
)
from airflow_provider_openrouter.windows.intervals import ONE_DAY, Window

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
CACHE_DIR = "_cache/rankings_daily"
DEFAULT_RESTATEMENT_DAYS = 7
DEFAULT_FRESH_FOR = timedelta(hours=1)


def split_by_year(window: Window) -> list[Window]:
    """``window`` cut at 1 January boundaries (each part lies inside one chunk)."""
    parts = []
    start = window.start
    while start <= window.end:
        end = min(window.end, date(start.year, 12, 31))
        parts.append(Window(start, end))
        start = end + ONE_DAY
    return parts


def trusted_until(entry_as_of: datetime, restatement_days: int) -> date:
    """The last day that a snapshot taken at ``entry_as_of`` holds as final."""
    return (entry_as_of - timedelta(days=restatement_days)).date() - ONE_DAY


@dataclass(frozen=True)
class CacheEntry:
    """One cached chunk: the validated answer and when it was fetched."""

    result: RankingsDaily
    fetched_at: datetime
    name: str

    def covers(
        self, window: Window, *, now: datetime, restatement_days: int, fresh_for: timedelta
    ) -> bool:
        meta = self.result.meta
        if not (meta.start_date <= window.start and window.end <= meta.end_date):
            return False
        if window.end <= trusted_until(meta.as_of, restatement_days):
            return True
        return now - self.fetched_at <= fresh_for


def _canonical(body: Any) -> bytes:
    """The bytes of the cache file's body, as written (its checksum covers exactly these bytes)."""
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


#: The key that precedes the body in a cache file: the body comes last, so a reader can hash its
#: bytes as stored instead of serialising the parsed year again.
_BODY_KEY = b'"body":'


def encode_entry(result: RankingsDaily, fetched_at: datetime) -> bytes:
    """The cache file: the API's meta verbatim and its rows (counts as exact decimal strings).

    ``{"format", "fetched_at", "requested", "sha256", "body": {"meta", "data"}}`` with the body
    last; ``sha256`` is the digest of the body's bytes as they stand in the file."""
    body = _canonical(
        {
            "meta": dict(result.meta.raw),
            "data": [
                [r.date.isoformat(), r.model_permaslug, str(r.total_tokens)] for r in result.rows
            ],
        }
    )
    header = json.dumps(
        {
            "format": CACHE_FORMAT,
            "fetched_at": fetched_at.isoformat(),
            "requested": [result.requested.start.isoformat(), result.requested.end.isoformat()],
            "sha256": hashlib.sha256(body).hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    return header[:-1] + b"," + _BODY_KEY + body + b"}"


class _Body(msgspec.Struct):
    meta: msgspec.Raw
    data: list[msgspec.Raw]  # one row each, decoded only for the days a run asks for


class _File(msgspec.Struct):
    format: int
    fetched_at: str
    requested: tuple[str, str]
    sha256: str
    body: _Body


_FILE = msgspec.json.Decoder(_File)
_ROWS = msgspec.json.Decoder(list[tuple[str, str, str]])


def _row_day(row: msgspec.Raw) -> bytes:
    """The ``YYYY-MM-DD`` of a stored row, read from its bytes (rows are written ``["YYYY-MM-DD",``)."""
    return memoryview(row)[2:12].tobytes()


def decode_entry(raw: bytes, name: str, days: Window | None = None) -> CacheEntry:
    """Parse, verify and re-validate a cache file; :class:`InvalidResponseError` if anything is off.

    The checksum covers the whole body and ``meta`` is always validated; with ``days``, only the
    rows of those days are decoded, parsed and validated again (the rest of the year was validated
    when it was fetched and is covered by the checksum; its rows are found by bisecting the stored
    rows, which are in date order), so a run pays for its own days, not the year's.
    """
    try:
        try:
            stored = _FILE.decode(raw)
        except msgspec.DecodeError:  # another format, or damaged: json says what is wrong
            stored = None
        if stored is None or stored.format != CACHE_FORMAT:
            envelope = json.loads(raw)
            found = envelope.get("format") if isinstance(envelope, dict) else None
            raise ValueError(
                f"cache format {found!r}, expected {CACHE_FORMAT}"
                if found != CACHE_FORMAT
                else "unexpected layout"
            )
        at = raw.find(_BODY_KEY)
        if (
            at < 0
            or not raw.endswith(b"}")
            or hashlib.sha256(raw[at + len(_BODY_KEY) : -1]).hexdigest() != stored.sha256
        ):
            raise ValueError("checksum mismatch")
        fetched_at = datetime.fromisoformat(stored.fetched_at)
        requested = Window(
            date.fromisoformat(stored.requested[0]), date.fromisoformat(stored.requested[1])
        )
        rows = stored.body.data
        if days is not None:
            first, last = days.start.isoformat().encode(), days.end.isoformat().encode()
            rows = rows[
                bisect_left(rows, first, key=_row_day) : bisect_right(rows, last, key=_row_day)
            ]
        payload = {
            "meta": json.loads(bytes(stored.body.meta)),
            "data": [
                {"date": d, "model_permaslug": s, "total_tokens": t}
                for d, s, t in _ROWS.decode(b"[" + b",".join(rows) + b"]")
            ],
        }
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidResponseError(
            f"cache entry {name} is unusable ({exc})", field="cache"
        ) from None
    if fetched_at.tzinfo is None:
        raise InvalidResponseError(f"cache entry {name} has a naive fetched_at", field="cache")
    return CacheEntry(parse_rankings_daily(payload, requested), fetched_at, name)


class RankingsChunkCache:
    """The chunk cache under one output base (see the module docstring for the rules).

    :param base: the operator's output base (``ObjectStoragePath``).
    :param restatement_days: how many days after a day ends its numbers are trusted as final.
    :param fresh_for: how long a fetched chunk is trusted for its younger days too.
    """

    def __init__(
        self,
        base: ObjectStoragePath,
        *,
        restatement_days: int = DEFAULT_RESTATEMENT_DAYS,
        fresh_for: timedelta = DEFAULT_FRESH_FOR,
        lease_seconds: float = 120.0,
        settle_seconds: float = 0.5,
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if restatement_days < 0:
            raise InvalidParameterError(f"restatement_days={restatement_days} must be 0 or more.")
        self.root = base / CACHE_DIR
        self.restatement_days = restatement_days
        self.fresh_for = fresh_for
        self.lease_seconds = lease_seconds
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds
        self._clock = clock

    # --------------------------------------------------------------- reading
    def lookup(self, window: Window) -> CacheEntry | None:
        """The newest usable entry covering all of ``window`` (which lies in one year), else None."""
        refresh(self.root)
        now = self._clock()
        best: CacheEntry | None = None
        for name in list_names(self.root):
            if not name.startswith(f"chunk={window.start.year}-"):
                continue
            raw = read_bytes(self.root / name / "response.json")
            if raw is None:
                continue
            try:
                entry = decode_entry(raw, name, window)
            except InvalidResponseError as exc:
                log.warning(
                    "Ignoring the rankings cache entry %s: %s. It will be refetched.", name, exc
                )
                continue
            if entry.covers(
                window, now=now, restatement_days=self.restatement_days, fresh_for=self.fresh_for
            ):
                if best is None or entry.result.meta.as_of > best.result.meta.as_of:
                    best = entry
        return best

    # --------------------------------------------------------------- writing
    def store(self, result: RankingsDaily, fetched_at: datetime) -> str:
        """Keep a validated chunk; older entries of the same chunk start are removed."""
        meta = result.meta
        name = f"chunk={meta.start_date.isoformat()}_{meta.end_date.isoformat()}"
        write_atomic(self.root / name / "response.json", encode_entry(result, fetched_at))
        for other in list_names(self.root):
            if other.startswith(f"chunk={meta.start_date.isoformat()}_") and other != name:
                remove(self.root / other / "response.json")
                try:
                    (self.root / other).rmdir()
                except Exception:
                    pass
        return name

    # --------------------------------------------------------------- single flight
    def _lease_path(self, year: int) -> ObjectStoragePath:
        return self.root / f"lease-{year}.json"

    def _read_lease(self, year: int) -> dict[str, Any] | None:
        raw = read_bytes(self._lease_path(year))
        try:
            lease = json.loads(raw) if raw else None
            return (
                lease if isinstance(lease, dict) and lease.get("expires", 0) > time.time() else None
            )
        except ValueError:
            return None

    def try_lease(self, year: int) -> str | None:
        """Claim the right to fetch ``year``'s chunk; the token if won, None if another run holds it."""
        if self._read_lease(year) is not None:
            return None
        token = uuid.uuid4().hex
        write_atomic(
            self._lease_path(year),
            json.dumps({"token": token, "expires": time.time() + self.lease_seconds}).encode(),
        )
        time.sleep(self.settle_seconds)
        current = self._read_lease(year)
        return token if current is not None and current.get("token") == token else None

    def release(self, year: int, token: str) -> None:
        current = self._read_lease(year)
        if current is not None and current.get("token") == token:
            remove(self._lease_path(year))

    def get_or_fetch(
        self, window: Window, fetch: Callable[[], RankingsDaily]
    ) -> tuple[CacheEntry, bool]:
        """A usable entry covering ``window`` (one year at most), fetching the chunk at most once
        across concurrent runs. Returns the entry and whether this call fetched it."""
        deadline = time.monotonic() + 3 * self.lease_seconds
        while True:
            entry = self.lookup(window)
            if entry is not None:
                return entry, False
            token = self.try_lease(window.start.year)
            if token is not None:
                try:
                    entry = self.lookup(
                        window
                    )  # another run may have stored it while we took the lease
                    if entry is not None:
                        return entry, False
                    fetched_at = self._clock()
                    result = fetch()
                    name = self.store(result, fetched_at)
                    return CacheEntry(result, fetched_at, name), True
                finally:
                    self.release(window.start.year, token)
            if time.monotonic() > deadline:
                # the lease holder is stuck or gone: fetch without the cache's help rather than wait forever
                fetched_at = self._clock()
                result = fetch()
                return CacheEntry(result, fetched_at, self.store(result, fetched_at)), True
            time.sleep(self.poll_seconds)
