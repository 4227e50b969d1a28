"""The analytics half of the emulator: a synthetic organisation's usage and a query engine.

Stdlib only, and nothing from the rest of the package (an independent reading of the API).
Everything is a pure function of the hour: ``hour_events`` derives a handful of usage events
per UTC hour from ``hashlib``, so every process serves the same numbers.

Shape of the data (chosen to exercise what a client must handle):

* Events carry second-precision timestamps, so every granularity (minute..month) buckets them.
  Some night and weekend hours have no event at all.
* ``cost`` is exact to 1e-15 dollars (per-token prices with 15 decimals) and served as a JSON
  number with all its digits; a day's total has 17-19 significant digits, more than a binary
  float keeps.
* ``avg_latency_ms`` is a rate (averaged, ``is_rate: true``); the rest are additive counts.
* Rows show labels for ``model`` (display name) and ``app`` (title, with commas, quotes and
  emoji) while filters take the underlying ids (permaslug, numeric app id), as upstream.

Queries are validated like the real API (400 with a message naming the bad item), answered with
``{"data": {"data": rows, "metadata": {...}, "cachedAt"?, "warnings"?}}``, truncated at ``limit``
with ``metadata.truncated``; time ranges are half-open ``[start, end)``.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

ORG_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
"""The synthetic organisation's first hour of usage."""
MANAGEMENT_KEY = "sk-or-mgmt-emulator"
MAX_DIMENSIONS = 2
MAX_FILTERS = 20
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
DEFAULT_RANGE = timedelta(days=30)
TIME_FIELD = "date"
MAX_EVENTS_PER_HOUR = 8

METRICS: dict[str, tuple[str, str, bool]] = {  # name -> (display_label, display_format, is_rate)
    "request_count": ("Requests", "number", False),
    "prompt_tokens": ("Prompt tokens", "number", False),
    "completion_tokens": ("Completion tokens", "number", False),
    "total_tokens": ("Total tokens", "number", False),
    "cost": ("Cost", "currency", False),
    "avg_latency_ms": ("Average latency", "latency", True),
}
DIMENSIONS = {"model": "Model", "provider": "Provider", "app": "App", "api_key_hash": "API key"}
GRANULARITIES = ("minute", "hour", "day", "week", "month")
OPERATORS = {
    "eq": "scalar",
    "neq": "scalar",
    "in": "array",
    "not_in": "array",
    "gt": "scalar",
    "gte": "scalar",
    "lt": "scalar",
    "lte": "scalar",
}
_BODY_KEYS = {
    "metrics",
    "dimensions",
    "filters",
    "granularity",
    "time_range",
    "limit",
    "group_limit",
    "order_by",
}
_TIMESTAMP_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True)
class UsageModel:
    """A model the organisation calls; prices are dollars per token, exact to 1e-15."""

    permaslug: str
    label: str
    providers: tuple[str, ...]
    prompt_price: Decimal
    completion_price: Decimal
    weight: int


MODELS: tuple[UsageModel, ...] = (
    UsageModel(
        "openai/gpt-4o-mini",
        "OpenAI: GPT-4o-mini",
        ("OpenAI", "Azure"),
        Decimal("0.000000150123137"),
        Decimal("0.000000600457274"),
        30,
    ),
    UsageModel(
        "anthropic/claude-sonnet-4",
        "Anthropic: Claude Sonnet 4",
        ("Anthropic", "Amazon Bedrock", "Google Vertex"),
        Decimal("0.000003000789411"),
        Decimal("0.000015001234548"),
        20,
    ),
    UsageModel(
        "google/gemini-2.5-flash",
        "Google: Gemini 2.5 Flash",
        ("Google AI Studio", "Google Vertex"),
        Decimal("0.000000300011685"),
        Decimal("0.000002500033822"),
        15,
    ),
    UsageModel(
        "deepseek/deepseek-chat-v3.1",
        "DeepSeek: DeepSeek V3.1",
        ("DeepInfra", "Fireworks", "Chutes"),
        Decimal("0.000000270999959"),
        Decimal("0.000001100101096"),
        10,
    ),
    UsageModel(
        "meta-llama/llama-3.3-70b-instruct",
        "Meta: Llama 3.3 70B Instruct",
        ("Groq", "Together", "DeepInfra"),
        Decimal("0.000000130713233"),
        Decimal("0.000000390217370"),
        8,
    ),
    UsageModel(
        "mistralai/mistral-small-3.1-24b-instruct",
        "Mistral: Mistral Small 3.1 24B",
        ("Mistral",),
        Decimal("0.000000100503507"),
        Decimal("0.000000300901644"),
        7,
    ),
    UsageModel(
        "qwen/qwen3-coder",
        "Qwen: Qwen3 Coder",
        ("Alibaba", "Chutes"),
        Decimal("0.000000220347781"),
        Decimal("0.000000950763918"),
        6,
    ),
    UsageModel(
        "x-ai/grok-code-fast-1",
        "xAI: Grok Code Fast 1",
        ("xAI",),
        Decimal("0.000000200001055"),
        Decimal("0.000001500002192"),
        4,
    ),
)
MODEL_BY_SLUG = {m.permaslug: m for m in MODELS}
APPS: dict[int, str] = {
    1001: "Acme Support Bot",
    1002: "Nightly Batch, v2",
    1003: 'Dev "Agent"',
    1004: "Café ☕ Notes",
}
API_KEY_HASHES: tuple[str, ...] = tuple(
    hashlib.sha256(f"emulator-org-key-{i}".encode()).hexdigest() for i in range(3)
)
_WEIGHTS = tuple(m.weight for m in MODELS)


class QueryError(Exception):
    """An error the emulator answers with ``status`` (400 or 408) and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Event:
    """Usage aggregated over a few requests at one instant; ``model``/``app`` are ids."""

    at: datetime
    model: str
    provider: str
    app: int
    api_key_hash: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    latency_ms_total: int


def meta_payload() -> dict[str, Any]:
    """The ``GET /analytics/meta`` answer."""
    return {
        "data": {
            "metrics": [
                {"name": n, "display_label": label, "display_format": fmt, "is_rate": rate}
                for n, (label, fmt, rate) in METRICS.items()
            ],
            "dimensions": [{"name": n, "display_label": label} for n, label in DIMENSIONS.items()],
            "granularities": [{"name": g, "display_label": g.capitalize()} for g in GRANULARITIES],
            "operators": [{"name": n, "value_type": kind} for n, kind in OPERATORS.items()],
        }
    }


def _pick(u: float, weights: tuple[int, ...]) -> int:
    target, total = u * sum(weights), 0
    for index, weight in enumerate(weights):
        total += weight
        if target < total:
            return index
    return len(weights) - 1


@lru_cache(maxsize=65_536)
def hour_events(hour: datetime) -> tuple[Event, ...]:
    """The events of the UTC hour starting at ``hour``, in time order (none before ``ORG_START``)."""
    if hour < ORG_START:
        return ()
    raw = hashlib.shake_256(f"usage|{hour.isoformat()}".encode()).digest(
        8 * (1 + 9 * MAX_EVENTS_PER_HOUR)
    )
    units = [v / 2**64 for v in struct.unpack(f">{len(raw) // 8}Q", raw)]
    factor = (0.35 if hour.hour < 7 else 1.0) * (0.5 if hour.weekday() >= 5 else 1.0)
    count = int(units[0] * (MAX_EVENTS_PER_HOUR + 1) * factor)
    events = []
    for i in range(count):
        u = units[1 + 9 * i : 10 + 9 * i]
        model = MODELS[_pick(u[1], _WEIGHTS)]
        requests = 1 + int(u[5] * 200)
        prompt = requests * (200 + int(u[6] * 3800))
        completion = requests * (50 + int(u[7] * 1450))
        events.append(
            Event(
                at=hour + timedelta(seconds=int(u[0] * 3600)),
                model=model.permaslug,
                provider=model.providers[int(u[2] * len(model.providers))],
                app=list(APPS)[int(u[3] * len(APPS))],
                api_key_hash=API_KEY_HASHES[int(u[4] * len(API_KEY_HASHES))],
                requests=requests,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost=prompt * model.prompt_price + completion * model.completion_price,
                latency_ms_total=requests * (250 + int(u[8] * 4000)),
            )
        )
    return tuple(sorted(events, key=lambda e: e.at))


def events_between(start: datetime, end: datetime) -> Iterator[Event]:
    """Every event with ``start <= at < end``."""
    hour = max(start, ORG_START).replace(minute=0, second=0, microsecond=0)
    while hour < end:
        for event in hour_events(hour):
            if start <= event.at < end:
                yield event
        hour += timedelta(hours=1)


def bucket(at: datetime, granularity: str) -> datetime:
    """Start of the UTC bucket holding ``at`` (weeks start on Monday)."""
    if granularity == "minute":
        return at.replace(second=0, microsecond=0)
    if granularity == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if granularity == "month" else day


def format_timestamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(obj: Any) -> bytes:
    """JSON with ``Decimal`` written as a plain number literal, every digit kept."""
    if isinstance(obj, Decimal):
        return format(obj, "f").encode()
    if isinstance(obj, dict):
        return (
            b"{"
            + b",".join(
                json.dumps(str(k), ensure_ascii=False).encode() + b":" + dumps(v)
                for k, v in obj.items()
            )
            + b"}"
        )
    if isinstance(obj, (list, tuple)):
        return b"[" + b",".join(dumps(v) for v in obj) + b"]"
    return json.dumps(obj, ensure_ascii=False).encode()


# ------------------------------------------------------------------ query validation


def _bad(message: str) -> QueryError:
    return QueryError(400, message)


def _names(body: dict[str, Any], key: str, valid: list[str], what: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"Invalid {key}: expected an array of strings")
    for name in value:
        if name not in valid:
            raise _bad(f"Invalid {what} {name!r}. Valid {what}s: {', '.join(valid)}")
    if len(set(value)) != len(value):
        raise _bad(f"Invalid {key}: duplicate {what}")
    return value


def _timestamp(raw: Any, name: str) -> datetime:
    if not isinstance(raw, str) or not _TIMESTAMP_RE.fullmatch(raw):
        raise _bad(
            f"Invalid {name}: expected an ISO 8601 timestamp with seconds, e.g. 2025-01-01T00:00:00Z, "
            f"got {raw!r}"
        )
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)


def _filters(raw: Any) -> list[tuple[str, str, Any]]:
    if not isinstance(raw, list):
        raise _bad("Invalid filters: expected an array")
    if len(raw) > MAX_FILTERS:
        raise _bad(f"Invalid filters: at most {MAX_FILTERS} filters allowed, got {len(raw)}")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not {"field", "operator", "value"} <= set(item):
            raise _bad(f"Invalid filters[{index}]: expected {{field, operator, value}}")
        field, operator, value = item["field"], item["operator"], item["value"]
        if field not in DIMENSIONS:
            raise _bad(
                f"Invalid filters[{index}].field {field!r}. Valid fields: {', '.join(DIMENSIONS)}"
            )
        if operator not in OPERATORS:
            raise _bad(
                f"Invalid filters[{index}].operator {operator!r}. Valid operators: {', '.join(OPERATORS)}"
            )
        scalar = (str, int)
        if OPERATORS[operator] == "array":
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, scalar) and not isinstance(v, bool) for v in value)
            ):
                raise _bad(
                    f"Invalid filters[{index}].value: operator {operator} expects a non-empty array"
                )
        elif not isinstance(value, scalar) or isinstance(value, bool):
            raise _bad(
                f"Invalid filters[{index}].value: operator {operator} expects a string or a number"
            )
        if field == "app":
            ids = value if isinstance(value, list) else [value]
            if not all(isinstance(v, int) or str(v).isdigit() for v in ids):
                raise _bad(
                    f"Invalid filters[{index}].value: app filters take numeric app ids, got {value!r}"
                )
        out.append((field, operator, value))
    return out


def _int(body: dict[str, Any], key: str, default: int | None, high: int) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise _bad(f"Invalid {key}: expected an integer from 1 to {high}, got {value!r}")
    return value


# ------------------------------------------------------------------ query execution


def _matches(event: Event, field: str, operator: str, value: Any) -> bool:
    have: Any = getattr(event, field)
    if field == "app":
        value = [int(v) for v in value] if isinstance(value, list) else int(value)
    if operator in ("in", "not_in"):
        return (have in value) == (operator == "in")
    if operator in ("eq", "neq"):
        return (have == value) == (operator == "eq")
    if isinstance(value, int) != isinstance(have, int):
        return False
    return {"gt": have > value, "gte": have >= value, "lt": have < value, "lte": have <= value}[
        operator
    ]


def _metric_values(totals: list[Any]) -> dict[str, Any]:
    requests, prompt, completion, cost, latency = totals
    return {
        "request_count": requests,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
        "avg_latency_ms": (Decimal(latency) / Decimal(requests)).quantize(
            Decimal("0.001"), ROUND_HALF_EVEN
        ),
    }


def _label(field: str, value: Any) -> Any:
    if field == "model":
        return MODEL_BY_SLUG[value].label
    return APPS[value] if field == "app" else value


def run_query(
    raw_body: bytes, now: datetime, timeout_span: timedelta | None = None
) -> dict[str, Any]:
    """Answer one ``POST /analytics/query`` body; raises :class:`QueryError` for 400 and 408."""
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        raise _bad("Invalid JSON body") from None
    if not isinstance(body, dict):
        raise _bad("Invalid request body: expected a JSON object")
    unknown = sorted(set(body) - _BODY_KEYS)
    if unknown:
        raise _bad(f"Unrecognized key(s) in request body: {', '.join(unknown)}")
    if "metrics" not in body or not body["metrics"]:
        raise _bad("Invalid metrics: at least one metric is required")
    metrics = _names(body, "metrics", list(METRICS), "metric")
    dimensions = _names(body, "dimensions", list(DIMENSIONS), "dimension")
    if len(dimensions) > MAX_DIMENSIONS:
        raise _bad(
            f"Invalid dimensions: at most {MAX_DIMENSIONS} dimensions allowed, got {len(dimensions)}"
        )
    filters = _filters(body.get("filters", []))
    granularity = body.get("granularity")
    if granularity is not None and granularity not in GRANULARITIES:
        raise _bad(
            f"Invalid granularity {granularity!r}. Valid granularities: {', '.join(GRANULARITIES)}"
        )
    time_range = body.get("time_range")
    if time_range is None:
        start, end = now.replace(microsecond=0) - DEFAULT_RANGE, now.replace(microsecond=0)
    elif not isinstance(time_range, dict) or set(time_range) != {"start", "end"}:
        raise _bad("Invalid time_range: expected {start, end}")
    else:
        start = _timestamp(time_range["start"], "time_range.start")
        end = _timestamp(time_range["end"], "time_range.end")
        if start >= end:
            raise _bad("Invalid time_range: start must be before end")
    limit = _int(body, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    group_limit = _int(body, "group_limit", None, MAX_LIMIT)
    order_by = body.get("order_by")
    if order_by is not None:
        if (
            not isinstance(order_by, dict)
            or set(order_by) != {"field", "direction"}
            or order_by["direction"] not in ("asc", "desc")
        ):
            raise _bad("Invalid order_by: expected {field, direction: asc|desc}")
        if order_by["field"] not in [*METRICS, *dimensions, TIME_FIELD]:
            raise _bad(
                f"Invalid order_by.field {order_by['field']!r}: use a metric, a requested dimension or "
                f"{TIME_FIELD!r}"
            )
    if timeout_span is not None and end - start > timeout_span:
        raise QueryError(408, "Query timed out: the time range is too large, use a smaller one")
    warnings = [
        f"api_key_hash {v!r} could not be resolved to a key of this organization"
        for field, _, value in filters
        if field == "api_key_hash"
        for v in (value if isinstance(value, list) else [value])
        if v not in API_KEY_HASHES
    ]
    groups: dict[tuple[Any, ...], list[Any]] = {}
    scanned = 0
    for event in events_between(start, min(end, now)):
        scanned += 1
        if all(_matches(event, *f) for f in filters):
            key = ((bucket(event.at, granularity),) if granularity else ()) + tuple(
                getattr(event, d) for d in dimensions
            )
            totals = groups.setdefault(key, [0, 0, 0, Decimal(0), 0])
            for index, value in enumerate(
                (
                    event.requests,
                    event.prompt_tokens,
                    event.completion_tokens,
                    event.cost,
                    event.latency_ms_total,
                )
            ):
                totals[index] += value
    entries = []
    for key, totals in groups.items():
        values = _metric_values(totals)
        labels = dict(
            zip(
                dimensions,
                (_label(d, v) for d, v in zip(dimensions, key[1:] if granularity else key)),
            )
        )
        row = (
            ({TIME_FIELD: format_timestamp(key[0])} if granularity else {})
            | labels
            | {m: values[m] for m in metrics}
        )
        entries.append((row, values, key))
    first = metrics[0]
    entries.sort(
        key=lambda e: (
            e[2][0] if granularity else 0,
            -e[1][first],
            [str(v) for v in e[2][1 if granularity else 0 :]],
        )
    )
    if order_by is not None:
        field = order_by["field"]
        entries.sort(
            key=lambda e: (
                e[2][0]
                if field == TIME_FIELD
                else e[0][field]
                if field in dimensions
                else e[1][field]
            ),
            reverse=order_by["direction"] == "desc",
        )
    rows = [row for row, _, _ in entries]
    if group_limit is not None and dimensions:
        seen: dict[tuple[Any, ...], int] = {}
        kept = []
        for row in rows:
            combo = tuple(row[d] for d in dimensions)
            seen[combo] = seen.get(combo, 0) + 1
            if seen[combo] <= group_limit:
                kept.append(row)
        rows = kept
    assert limit is not None
    truncated = len(rows) > limit
    rows = rows[:limit]
    answer: dict[str, Any] = {
        "data": rows,
        "metadata": {
            "query_time_ms": 3 + scanned // 40,
            "row_count": len(rows),
            "truncated": truncated,
        },
    }
    if warnings:
        answer["warnings"] = warnings
    return {"data": answer}
