"""API JSON to typed, exact values: the answer envelope, ``meta``, counts, and the error for a broken answer.

Pure functions shared by every dataset module: a response that breaks a rule raises
:class:`InvalidResponseError` naming the field and the row, before anything downstream can write
it. Unknown extra fields are tolerated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.windows.intervals import Window

#: Turns the bytes of a 200 answer into what a dataset's parser reads; raises ``ValueError`` when
#: the body is not JSON at all (the client retries that).
Decoder = Callable[[bytes], Any]
Wire = TypeVar("Wire")


def loads_exact(body: bytes) -> Any:
    """The JSON body with every float kept exact as a :class:`~decimal.Decimal`: any answer's decoder.

    What ``json.loads(body, parse_float=Decimal)`` gives, decoded by msgspec in about half the
    time; ``json.loads`` itself reads what msgspec refuses (``NaN``, other encodings than UTF-8)
    and raises ``ValueError`` for a body that is not JSON.
    """
    try:
        return _EXACT.decode(body)
    except msgspec.DecodeError:
        return json.loads(body, parse_float=Decimal)


_EXACT = msgspec.json.Decoder(float_hook=Decimal)


def decode_wire(decoder: msgspec.json.Decoder[Wire], body: bytes) -> Wire | Any:
    """The body straight into a dataset's wire type, or, when it has any other shape, plain JSON.

    The wire type is the answer's common, valid shape (exact field types, no floats): msgspec
    decodes it and checks every field's type in one C pass, with no per-row dict. Any other shape
    (a missing field, another type, a float, malformed JSON) decodes with :func:`loads_exact`
    instead, so the dataset's row-by-row checks name the broken rule and the row, and a body that
    is not JSON at all raises ``ValueError`` as before.
    """
    try:
        return decoder.decode(body)
    except msgspec.DecodeError:  # ValidationError included: the row-by-row checks say what is wrong
        return loads_exact(body)


def wire_meta(raw: msgspec.Raw) -> Mapping[str, Any]:
    """A wire answer's ``meta`` (kept raw, so its floats decode exact): a JSON object, else the
    same error as :func:`envelope` gives."""
    meta = loads_exact(bytes(raw))
    if type(meta) is not dict:
        raise fail(f"{meta!r} has type {type(meta).__name__}", field="meta")
    return meta


def digit_counts(values: list[str]) -> list[int] | None:
    """A column of plain ``str`` counts as :func:`parse_count` reads them, or None unless every one
    is a non-empty run of ASCII digits.

    Checked and converted over the whole column at once: the values joined by commas hold nothing
    but digits and exactly ``len - 1`` commas, and that text read as a JSON array gives the ints
    (a leading zero, valid here and not in JSON, takes the per-value ``int``)."""
    if not values:
        return []
    text = ",".join(values)
    if not text.isascii():
        return None
    joined = text.encode()
    if (
        joined.translate(None, b"0123456789,")
        or joined.count(b",") != len(values) - 1
        or not all(values)
    ):
        return None
    try:
        return _INT_ARRAY.decode(b"[" + joined + b"]")
    except msgspec.DecodeError:
        return list(map(int, values))


_INT_ARRAY = msgspec.json.Decoder(list[int])


@dataclass(frozen=True)
class DatasetMeta:
    """The ``meta`` block of a dataset response, typed; ``raw`` keeps it verbatim."""

    as_of: datetime
    start_date: date
    end_date: date
    version: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def window(self) -> Window:
        return Window(self.start_date, self.end_date)


def invalid_response(
    message: str,
    *,
    field: str | None = None,
    row: int | None = None,
    what: str = "response",
    api: str = "API",
) -> InvalidResponseError:
    """The :class:`InvalidResponseError` for a broken answer, naming the row and field when known."""
    where = (
        f" (row {row}, field {field!r})"
        if row is not None
        else (f" (field {field!r})" if field else "")
    )
    return InvalidResponseError(
        f"Invalid {what} from OpenRouter{where}: {message}. Nothing was written; "
        f"if this persists the {api} may have changed its schema.",
        field=field,
        row=row,
    )


fail = invalid_response


def parse_count(value: Any, *, field: str, row: int | None = None) -> int:
    """An exact non-negative integer from a digits-only string or a JSON integer, never via float."""
    kind = type(value)
    if (
        kind is str and value.isascii() and value.isdigit()
    ):  # the API's form; "" is not a digit string
        return int(value)
    if kind is int and value >= 0:
        return value
    if isinstance(value, str):
        if value and value.isascii() and value.isdigit():
            return int(value)
        raise fail(f"{value!r} is not a non-negative decimal integer string", field=field, row=row)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise fail(
        f"{value!r} ({type(value).__name__}) is not an exact non-negative integer",
        field=field,
        row=row,
    )


def exact_counts(values: list[Any]) -> list[int] | None:
    """A column of counts as :func:`parse_count` reads them, or None unless every value is a plain
    digits-only ``str`` or every value a plain non-negative ``int`` (then check value by value)."""
    kinds = set(map(type, values))
    if kinds == _STR:
        return digit_counts(values)
    if kinds == _INT and min(values) >= 0:
        return list(values)
    return None if values else []


_STR, _INT = {str}, {int}


def parse_date(value: Any, *, field: str, row: int | None = None) -> date:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise fail(f"{value!r} is not a YYYY-MM-DD date", field=field, row=row)


def parse_timestamp(value: Any, *, field: str) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(timezone.utc)
    raise fail(f"{value!r} is not an ISO-8601 timestamp with a timezone", field=field)


def require(
    obj: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    *,
    where: str,
    row: int | None = None,
) -> Any:
    if key not in obj:
        raise fail(f"missing required field {key!r} in {where}", field=key, row=row)
    value = obj[key]
    if type(value) is kind and kind is not bool:
        return value
    if not isinstance(value, kind) or isinstance(value, bool):
        raise fail(f"{value!r} has type {type(value).__name__}", field=key, row=row)
    return value


def envelope(payload: Any) -> tuple[list[Any], Mapping[str, Any]]:
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise fail(f"expected a JSON object, got {type(payload).__name__}")
    data = require(payload, "data", list, where="the response")
    meta = require(payload, "meta", Mapping, where="the response")
    return data, meta


def parse_meta(meta: Mapping[str, Any]) -> DatasetMeta:
    """Type the ``meta`` block; its window must be ordered."""
    as_of = parse_timestamp(require(meta, "as_of", str, where="meta"), field="meta.as_of")
    start = parse_date(require(meta, "start_date", str, where="meta"), field="meta.start_date")
    end = parse_date(require(meta, "end_date", str, where="meta"), field="meta.end_date")
    version = require(meta, "version", str, where="meta")
    if start > end:
        raise fail(f"meta window {start}..{end} ends before it starts", field="meta.end_date")
    return DatasetMeta(as_of=as_of, start_date=start, end_date=end, version=version, raw=dict(meta))
