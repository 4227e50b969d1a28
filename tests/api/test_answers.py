"""api.answers: the decoders every answer goes through read JSON exactly as json.loads does."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from airflow_provider_openrouter.api.answers import decode_wire, loads_exact

BODIES = [
    b'{"data": [{"n": 1}], "meta": {"as_of": "2026-01-01T00:00:00Z"}}',
    b"[123456789012345678901234567890, -9223372036854775809, 18446744073709551616, -0]",
    b"[1E5, 1.50, -0.0, 1e400, 0.1e-400, 1.0000000000000000000000001, 0.30000000000000004]",
    b'{"cost": 0.246663968226600, "ratio": 1.50, "tiny": 1E-7}',  # floats msgspec reads itself
    b'{"a": 1, "a": 2}',  # the last duplicate key wins in both
    b'["\\u00e9\\ud83d\\ude80", "caf\xc3\xa9", "\\"quoted\\"", "\\n"]',
    b"  [true, false, null, {}, []]  ",
]


@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_loads_exact_reads_what_json_loads_with_decimal_floats_reads(body: bytes) -> None:
    expected = json.loads(body, parse_float=Decimal)
    got = loads_exact(body)
    assert got == expected and repr(got) == repr(expected)  # Decimal('1.50') keeps its digits


@pytest.mark.parametrize(
    "body",
    [
        b"[NaN, Infinity]",  # msgspec refuses these; json.loads reads them (the rules reject floats)
        '{"a": "\u00e9"}'.encode("utf-16"),  # another encoding json.loads detects
        b'["\\ud800"]',  # a lone surrogate
    ],
    ids=["nan", "utf-16", "surrogate"],
)
def test_what_msgspec_refuses_is_read_by_json_loads(body: bytes) -> None:
    got = loads_exact(body)
    assert repr(got) == repr(json.loads(body, parse_float=Decimal))


@pytest.mark.parametrize("body", [b"", b'{"data": [', b"<html>502</html>", b"\xff\xfe\xfd"])
def test_a_body_that_is_not_json_raises_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads_exact(body)


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    # RFC 8259 8.1 lets a parser ignore it; json.loads refuses bytes with one, msgspec skips it
    assert loads_exact(b'\xef\xbb\xbf{"a": 1.5}') == {"a": Decimal("1.5")}


class Pair(msgspec.Struct):
    name: str
    count: int


def test_decode_wire_gives_the_wire_type_or_else_plain_json() -> None:
    decoder = msgspec.json.Decoder(Pair)
    assert decode_wire(decoder, b'{"name": "a", "count": 1, "extra": 0.5}') == Pair("a", 1)
    other: list[Any] = [
        (b'{"name": "a", "count": true}', {"name": "a", "count": True}),
        (b'{"name": "a", "count": 1.5}', {"name": "a", "count": Decimal("1.5")}),
        (b'{"name": "a"}', {"name": "a"}),
        (b"[1]", [1]),
    ]
    for body, plain in other:
        got = decode_wire(decoder, body)
        assert type(got) is not Pair and got == plain, body
    with pytest.raises(ValueError):
        decode_wire(decoder, b'{"name": ')
