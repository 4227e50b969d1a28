"""validation: every integrity rule has a test that fails without it."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from airflow_provider_openrouter.api.answers import (
    digit_counts,
    exact_counts,
    parse_count,
    parse_meta,
)
from airflow_provider_openrouter.api.datasets import app_rankings, rankings_daily
from airflow_provider_openrouter.api.datasets.app_rankings import (
    join_app_pages,
    parse_app_rankings_page,
)
from airflow_provider_openrouter.api.datasets.rankings_daily import parse_rankings_daily
from airflow_provider_openrouter.exceptions import InvalidResponseError
from airflow_provider_openrouter.windows.intervals import Window

DAY1, DAY2 = "2026-05-10", "2026-05-11"
BIG = str(2**53 + 1)
REQUESTED = Window(date(2026, 5, 10), date(2026, 5, 11))


def rankings_payload() -> dict[str, Any]:
    return {
        "data": [
            {"date": DAY1, "model_permaslug": "openai/gpt-4o", "total_tokens": BIG},
            {"date": DAY1, "model_permaslug": "a/tie", "total_tokens": "500"},
            {"date": DAY1, "model_permaslug": "b/tie", "total_tokens": "500"},
            {"date": DAY1, "model_permaslug": "other", "total_tokens": "12345678901234567890"},
            {
                "date": DAY2,
                "model_permaslug": "anthropic/claude",
                "total_tokens": "900",
                "new_field": 1,
            },
        ],
        "meta": {
            "as_of": "2026-05-12T02:00:00Z",
            "start_date": DAY1,
            "end_date": DAY2,
            "version": "v1",
        },
    }


def test_valid_response_is_typed_and_exact() -> None:
    result = parse_rankings_daily(rankings_payload(), REQUESTED)
    assert result.meta.as_of == datetime(2026, 5, 12, 2, tzinfo=timezone.utc)
    assert (result.meta.start_date, result.meta.end_date, result.meta.version) == (
        date(2026, 5, 10),
        date(2026, 5, 11),
        "v1",
    )
    assert result.meta.raw["as_of"] == "2026-05-12T02:00:00Z"
    first = result.rows[0]
    assert first.total_tokens == 2**53 + 1 and type(first.total_tokens) is int
    assert result.rows[3].total_tokens == 12345678901234567890
    assert first.date == date(2026, 5, 10)
    assert len(result.rows_for(date(2026, 5, 11))) == 1
    assert not result.clamped


def test_clamped_window_is_exposed() -> None:
    result = parse_rankings_daily(rankings_payload(), Window(date(2026, 5, 10), date(2026, 5, 12)))
    assert result.clamped


def mutate(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(rankings_payload())
    target = payload
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    "payload,field,row",
    [
        (mutate(("data", 0, "total_tokens"), "12.5"), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), "-5"), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), Decimal("1.5e16")), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), 1.5e16), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), ""), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), "１２"), "total_tokens", 0),
        (mutate(("data", 0, "total_tokens"), True), "total_tokens", 0),
        (mutate(("data", 1, "model_permaslug"), KeyError), "model_permaslug", 1),
        (mutate(("data", 1, "model_permaslug"), ""), "model_permaslug", 1),
        (mutate(("data", 1, "model_permaslug"), 7), "model_permaslug", 1),
        (mutate(("data", 1, "date"), "2026-05-32"), "date", 1),
        (mutate(("data", 1, "date"), "2026-05-09"), "date", 1),
        (mutate(("data", 4, "date"), DAY1), "model_permaslug", 4),
        (mutate(("data", 2, "model_permaslug"), "a/tie"), "model_permaslug", 2),
        (mutate(("data", 1, "model_permaslug"), "c/tie"), "total_tokens", 2),
        (mutate(("data", 1, "total_tokens"), str(2**60)), "total_tokens", 1),
        (mutate(("data", 0), "not an object"), None, 0),
    ],
)
def test_each_rule_names_field_and_row(
    payload: dict[str, Any], field: str | None, row: int
) -> None:
    with pytest.raises(InvalidResponseError) as info:
        parse_rankings_daily(payload, REQUESTED)
    assert info.value.row == row
    assert info.value.field == field
    assert "Nothing was written" in str(info.value)


def test_other_must_be_last_within_its_date() -> None:
    payload = rankings_payload()
    payload["data"].insert(4, {"date": DAY1, "model_permaslug": "late/model", "total_tokens": "1"})
    with pytest.raises(InvalidResponseError, match="'other' must be last"):
        parse_rankings_daily(payload, REQUESTED)


def test_dates_must_ascend() -> None:
    payload = rankings_payload()
    payload["data"].append({"date": DAY1, "model_permaslug": "z/model", "total_tokens": "1"})
    with pytest.raises(InvalidResponseError, match="sorted by date"):
        parse_rankings_daily(payload, REQUESTED)


def test_more_than_fifty_models_a_day_is_rejected() -> None:
    rows = [
        {"date": DAY1, "model_permaslug": f"m/{i:02d}", "total_tokens": str(1000 - i)}
        for i in range(51)
    ]
    payload = {"data": rows, "meta": rankings_payload()["meta"]}
    with pytest.raises(InvalidResponseError, match="more than 50"):
        parse_rankings_daily(payload, REQUESTED)
    payload["data"] = rows[:50]
    assert len(parse_rankings_daily(payload, REQUESTED).rows) == 50


@pytest.mark.parametrize(
    "meta_change,match",
    [
        ({"as_of": "2026-05-12T02:00:00"}, "timezone"),
        ({"as_of": "yesterday"}, "timezone"),
        ({"start_date": "2026-05-12"}, "ends before it starts"),
        ({"version": None}, "version"),
        ({"end_date": None}, "end_date"),
    ],
)
def test_meta_is_checked(meta_change: dict[str, Any], match: str) -> None:
    payload = rankings_payload()
    payload["meta"].update(meta_change)
    payload["data"] = []
    with pytest.raises(InvalidResponseError, match=match):
        parse_rankings_daily(payload, REQUESTED)


@pytest.mark.parametrize("payload", [[], {"data": []}, {"meta": {}}, {"data": {}, "meta": {}}, "x"])
def test_envelope_is_checked(payload: Any) -> None:
    with pytest.raises(InvalidResponseError):
        parse_rankings_daily(payload, REQUESTED)


def test_parse_count_accepts_exact_integers_only() -> None:
    assert parse_count("0", field="f") == 0
    assert parse_count(str(10**30), field="f") == 10**30
    assert parse_count(42, field="f") == 42
    assert parse_count(Count(7), field="f") == 7 and parse_count(Text("8"), field="f") == 8
    for bad in (
        "1e3",
        " 1",
        "0x10",
        -1,
        1.0,
        None,
        False,
        True,
        "",
        "１２",
        "²",
        Text("-1"),
        Decimal(3),
    ):
        with pytest.raises(InvalidResponseError):
            parse_count(bad, field="f")


def test_exact_counts_reads_only_plain_columns() -> None:
    assert exact_counts(["0", "12", str(10**30)]) == [0, 12, 10**30]
    assert exact_counts([0, 5, 2**64]) == [0, 5, 2**64]
    assert exact_counts([]) == []
    for column in (
        ["1", ""],
        ["1", "²"],
        ["1", "１"],
        ["1", 2],
        [1, -1],
        [1, True],
        [1.0],
        [Count(1)],
        [Text("1")],
    ):
        assert exact_counts(column) is None, column


def test_digit_counts_reads_a_whole_column_of_digit_strings_or_declines() -> None:
    assert digit_counts(["0", "12", str(10**30), "007"]) == [0, 12, 10**30, 7]  # "007": not JSON
    assert digit_counts([str(2**64 + 1)] * 3) == [2**64 + 1] * 3
    assert digit_counts([]) == []
    for column in (
        ["1", ""],
        ["", "1"],
        ["1,2"],  # a comma inside a value must not split it into two counts
        ["1,", "2"],
        ["1", "-1"],
        ["1", "1.0"],
        ["1", "1e3"],
        ["1", " 1"],
        ["1", "[1]"],
        ["1", "²"],
        ["1", "１"],
    ):
        assert digit_counts(column) is None, column
    for value in BAD_TOKENS:
        if isinstance(value, str):
            assert digit_counts(["1", value]) is None, value


def test_decode_reads_the_common_shape_into_wire_rows_and_anything_else_as_plain_json() -> None:
    payload = rankings_payload()
    assert type(rankings_daily.decode(json.dumps(payload).encode())) is rankings_daily._Wire
    payload["data"][0]["total_tokens"] = 5  # valid, but not the wire shape
    assert rankings_daily.decode(json.dumps(payload).encode()) == payload
    payload["meta"]["float"] = 0.1  # meta is kept exact either way
    payload["data"][0]["total_tokens"] = BIG
    result = parse_rankings_daily(rankings_daily.decode(json.dumps(payload).encode()), REQUESTED)
    assert result.meta.raw["float"] == Decimal("0.1")
    for body in (b'{"data": [', b"<html>502</html>", b"\xff"):
        with pytest.raises(ValueError):  # the client retries a body that is not JSON
            rankings_daily.decode(body)
    with pytest.raises(InvalidResponseError, match="has type list") as info:
        parse_rankings_daily(rankings_daily.decode(b'{"data": [], "meta": []}'), REQUESTED)
    assert info.value.field == "meta"


def app_page(offset: int, n: int, *, start_id: int = 1000) -> dict[str, Any]:
    return {
        "data": [
            {
                "app_id": start_id + i,
                "app_name": f'App "{i}", ok 🚀\nline',
                "rank": offset + i + 1,
                "total_requests": 10 * (n - i),
                "total_tokens": str(10**18 - i),
            }
            for i in range(n)
        ],
        "meta": {
            "as_of": "2026-05-12T02:00:00Z",
            "start_date": DAY1,
            "end_date": DAY2,
            "version": "v1",
        },
    }


def test_app_pages_join_with_absolute_ranks() -> None:
    first = parse_app_rankings_page(app_page(0, 100), 0)
    second = parse_app_rankings_page(app_page(100, 100, start_id=5000), 100)
    joined = join_app_pages([first, second], REQUESTED, capped=True)
    assert [r.rank for r in joined.rows] == list(range(1, 201))
    assert joined.rows[0].app_name.endswith("\nline")
    assert joined.rows[0].total_tokens == 10**18
    assert joined.capped


def test_app_rank_gap_is_rejected() -> None:
    with pytest.raises(InvalidResponseError, match="rank 1 where 101 was expected") as info:
        parse_app_rankings_page(app_page(0, 3), 100)
    assert info.value.field == "rank"


def test_app_duplicate_across_pages_is_rejected() -> None:
    first = parse_app_rankings_page(app_page(0, 2), 0)
    second = parse_app_rankings_page(app_page(2, 2), 2)
    with pytest.raises(InvalidResponseError, match="appears twice"):
        join_app_pages([first, second], REQUESTED, capped=False)


def test_app_pages_with_different_windows_are_rejected() -> None:
    first = parse_app_rankings_page(app_page(0, 2), 0)
    other = app_page(2, 2, start_id=9000)
    other["meta"]["end_date"] = DAY1
    with pytest.raises(InvalidResponseError, match="different windows"):
        join_app_pages([first, parse_app_rankings_page(other, 2)], REQUESTED, capped=False)


@pytest.mark.parametrize(
    "field,value", [("app_id", "12"), ("rank", 1.0), ("total_requests", -1), ("app_name", None)]
)
def test_app_fields_are_typed(field: str, value: Any) -> None:
    page = app_page(0, 2)
    page["data"][0][field] = value
    with pytest.raises(InvalidResponseError) as info:
        parse_app_rankings_page(page, 0)
    assert info.value.field == field and info.value.row == 0


# --------------------------------------------------------------------------- the fast paths
# parse_rankings_daily and parse_app_rankings_page check a whole answer column by column when its
# values are plain dict/str/int, and hand anything unusual to the row-by-row checks; the hook's
# rankings-daily bytes go through rankings_daily.decode into typed wire rows, checked column by
# column too. These tests pin that neither fast pass ever accepts what the row-by-row pass rejects,
# and that all of them give the same rows.


class Text(str):
    pass


class Count(int):
    pass


class Row(dict):
    pass


#: What :func:`wire_rows` gives when the payload has no JSON text (bytes, Decimal, subclasses) or
#: its JSON text does not decode into wire rows (the plain-JSON path then applies).
NOT_JSON, NOT_WIRE = "not JSON", "not wire rows"


def as_json(payload: dict[str, Any]) -> bytes | None:
    """The payload as the API would send it, or None when JSON cannot say it."""

    def refuse(value: Any) -> Any:
        raise TypeError(type(value).__name__)

    try:
        text = json.dumps(payload, default=refuse)
    except (TypeError, ValueError):
        return None
    back = json.loads(text)
    return text.encode() if back == payload else None  # e.g. a str subclass would round-trip as str


def wire_pass(payload: dict[str, Any], module: Any, wire: type, rows: Any, *args: Any) -> Any:
    """A dataset's wire pass (``rows(decoded.data, *args)``) over the payload's JSON bytes: rows,
    None (it declines), NOT_JSON or NOT_WIRE."""
    body = as_json(payload)
    if body is None:
        return NOT_JSON
    decoded = module.decode(body)
    if type(decoded) is not wire:
        return NOT_WIRE
    return rows(decoded.data, *args)


def wire_rows(payload: dict[str, Any]) -> Any:
    meta = parse_meta(payload["meta"])
    return wire_pass(payload, rankings_daily, rankings_daily._Wire, rankings_daily._wire_rows, meta)


def fast_and_checked(payload: dict[str, Any]) -> tuple[Any, Any]:
    """The dict fast pass and the row-by-row pass; the wire pass must agree with the row-by-row one."""
    meta = parse_meta(payload["meta"])
    fast = rankings_daily._fast_rows(payload["data"], meta)
    try:
        checked: Any = rankings_daily._checked_rows(payload["data"], meta)
    except InvalidResponseError as exc:
        checked = exc
    wire = wire_rows(payload)
    if isinstance(checked, InvalidResponseError):
        assert wire in (None, NOT_JSON, NOT_WIRE), "the wire pass accepted what the rules reject"
    else:
        assert wire in (checked, NOT_JSON, NOT_WIRE), "the wire pass read other rows"
    body = as_json(payload)
    if body is not None:  # the hook's own path, bytes to rows, ends as the dict path ends
        try:
            through_bytes: Any = parse_rankings_daily(rankings_daily.decode(body), REQUESTED).rows
        except InvalidResponseError as exc:
            assert isinstance(checked, InvalidResponseError)
            assert (exc.field, exc.row) == (checked.field, checked.row)
        else:
            assert through_bytes == checked
    return fast, checked


BAD_TOKENS = [
    "12.5",
    "-5",
    "",
    " 1",
    "1 ",
    "+1",
    "1_000",
    "0x10",
    "1e3",
    "１２",
    "²",
    "١٢",
    "12\n",
    -1,
    True,
    False,
    1.5e16,
    15.0,
    Decimal("15"),
    None,
    [1],
    {"n": 1},
]


@pytest.mark.parametrize("value", BAD_TOKENS, ids=repr)
@pytest.mark.parametrize("row", [0, 3, 4])
def test_every_bad_count_is_rejected_on_the_fast_path(value: Any, row: int) -> None:
    payload = mutate(("data", row, "total_tokens"), value)
    fast, checked = fast_and_checked(payload)
    assert fast is None and isinstance(checked, InvalidResponseError)
    with pytest.raises(InvalidResponseError) as info:
        parse_rankings_daily(payload, REQUESTED)
    assert (info.value.field, info.value.row) == ("total_tokens", row)


@pytest.mark.parametrize(
    "path,value,field",
    [
        (("data", 1, "date"), 20260510, "date"),
        (("data", 1, "date"), "2026-5-10", "date"),
        (
            ("data", 4, "date"),
            "20260511",
            "date",
        ),  # ISO basic format: fromisoformat reads it, the rule does not
        (("data", 1, "date"), "2026-05-10T00:00:00", "date"),
        (("data", 1, "date"), " 2026-05-10", "date"),
        (("data", 1, "date"), None, "date"),
        (("data", 1, "date"), KeyError, "date"),
        (("data", 4, "date"), "2026-05-12", "date"),
        (("data", 1, "model_permaslug"), None, "model_permaslug"),
        (("data", 1, "model_permaslug"), b"a/tie", "model_permaslug"),
        (("data", 1, "model_permaslug"), True, "model_permaslug"),
        (("data", 3, "model_permaslug"), "openai/gpt-4o", "model_permaslug"),
        (("data", 2, "total_tokens"), KeyError, "total_tokens"),
        (("data", 2, "total_tokens"), "501", "total_tokens"),
        (("data", 0, "total_tokens"), "499", "total_tokens"),
        (("data", 0), ["2026-05-10", "openai/gpt-4o", BIG], None),
        (("data", 0), None, None),
    ],
)
def test_every_rule_is_kept_on_the_fast_path(
    path: tuple[Any, ...], value: Any, field: str | None
) -> None:
    payload = mutate(path, value)
    fast, checked = fast_and_checked(payload)
    assert fast is None and isinstance(checked, InvalidResponseError)
    with pytest.raises(InvalidResponseError) as info:
        parse_rankings_daily(payload, REQUESTED)
    assert info.value.field == field


def test_other_row_in_the_middle_and_twice_are_rejected_on_the_fast_path() -> None:
    for rows in (
        [("a/m", "9"), ("other", "1"), ("b/m", "5")],
        [("a/m", "9"), ("other", "1"), ("other", "1")],
        [("other", "1"), ("a/m", "9")],
    ):
        payload = {
            "data": [{"date": DAY1, "model_permaslug": s, "total_tokens": t} for s, t in rows],
            "meta": rankings_payload()["meta"],
        }
        fast, checked = fast_and_checked(payload)
        assert fast is None and isinstance(checked, InvalidResponseError), rows


def test_a_date_repeated_after_a_later_one_is_rejected_on_the_fast_path() -> None:
    payload = rankings_payload()
    payload["data"].append({"date": DAY1, "model_permaslug": "late/model", "total_tokens": "1"})
    fast, checked = fast_and_checked(payload)
    assert fast is None and isinstance(checked, InvalidResponseError)


def test_fifty_one_models_are_rejected_on_the_fast_path_and_fifty_plus_other_accepted() -> None:
    rows = [
        {"date": DAY1, "model_permaslug": f"m/{i:02d}", "total_tokens": str(1000 - i)}
        for i in range(51)
    ]
    fast, checked = fast_and_checked({"data": rows, "meta": rankings_payload()["meta"]})
    assert fast is None and isinstance(checked, InvalidResponseError)
    rows[-1] = {"date": DAY1, "model_permaslug": "other", "total_tokens": "999999"}
    fast, checked = fast_and_checked({"data": rows, "meta": rankings_payload()["meta"]})
    assert fast is not None and fast == checked and fast[-1].model_permaslug == "other"


def test_ties_are_ordered_by_permaslug_on_the_fast_path() -> None:
    rows = [("c/m", "9"), ("a/t", "5"), ("b/t", "5"), ("c/t", "5"), ("d/m", "2")]
    payload = {
        "data": [{"date": DAY1, "model_permaslug": s, "total_tokens": t} for s, t in rows],
        "meta": rankings_payload()["meta"],
    }
    fast, checked = fast_and_checked(payload)
    assert fast is not None and fast == checked
    payload["data"][2]["model_permaslug"], payload["data"][3]["model_permaslug"] = "c/t", "b/t"
    fast, checked = fast_and_checked(payload)
    assert fast is None and isinstance(checked, InvalidResponseError)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["data"][0].update(total_tokens=Text(BIG)),
        lambda p: p["data"][0].update(total_tokens=Count(2**53 + 1)),
        lambda p: p["data"][1].update(model_permaslug=Text("a/tie")),
        lambda p: p["data"][1].update(date=Text(DAY1)),
        lambda p: p["data"].__setitem__(2, Row(p["data"][2])),
        lambda p: p["data"][0].update(
            total_tokens=2**53 + 1
        ),  # a JSON integer beside digit strings
        lambda p: [row.update(total_tokens=int(row["total_tokens"])) for row in p["data"]],
    ],
)
def test_subclasses_and_json_integers_are_read_as_the_row_by_row_checks_read_them(
    change: Any,
) -> None:
    payload = rankings_payload()
    expected = parse_rankings_daily(rankings_payload(), REQUESTED).rows
    change(payload)
    result = parse_rankings_daily(payload, REQUESTED)
    assert result.rows == expected
    assert all(type(r.total_tokens) is int or isinstance(r.total_tokens, int) for r in result.rows)


def test_fast_and_row_by_row_passes_give_identical_rows() -> None:
    payload = rankings_payload()
    fast, checked = fast_and_checked(payload)
    assert fast is not None and fast == checked
    assert [type(v) for v in msgspec.structs.astuple(fast[0])] == [date, str, int]
    assert wire_rows(payload) == fast
    assert fast[0].to_record() == {
        "date": DAY1,
        "model_permaslug": "openai/gpt-4o",
        "total_tokens": 2**53 + 1,
    }
    assert parse_rankings_daily({"data": [], "meta": payload["meta"]}, REQUESTED).rows == ()


def test_rows_are_immutable() -> None:
    row = parse_rankings_daily(rankings_payload(), REQUESTED).rows[0]
    with pytest.raises(AttributeError):
        row.total_tokens = 1  # type: ignore[misc]
    app = parse_app_rankings_page(app_page(0, 1), 0)[1][0]
    with pytest.raises(AttributeError):
        app.rank = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "field,value",
    [
        ("app_id", True),
        ("app_id", 12.0),
        ("app_id", None),
        ("app_id", KeyError),
        ("app_name", 7),
        ("app_name", b"x"),
        ("app_name", KeyError),
        ("rank", True),
        ("rank", "1"),
        ("rank", 2),
        ("rank", KeyError),
        ("total_requests", True),
        ("total_requests", 1.5),
        ("total_requests", "１"),
        ("total_requests", ""),
        ("total_requests", "-1"),
        ("total_requests", KeyError),
        ("total_tokens", False),
        ("total_tokens", 1e18),
        ("total_tokens", "1.0"),
        ("total_tokens", -5),
        ("total_tokens", "²"),
        ("total_tokens", None),
    ],
)
def test_app_page_rules_are_kept_on_the_fast_path(field: str, value: Any) -> None:
    page = app_page(0, 3)
    if value is KeyError:
        del page["data"][0][field]
    else:
        page["data"][0][field] = value
    assert app_rankings._fast_page(page["data"], 0) is None
    assert app_wire_page(page) in (None, NOT_JSON, NOT_WIRE)
    with pytest.raises(InvalidResponseError) as info:
        parse_app_rankings_page(page, 0)
    assert (info.value.field, info.value.row) == (field, 0)
    body = as_json(page)
    if body is not None:  # the hook's path from bytes names the same field and row
        with pytest.raises(InvalidResponseError) as info:
            parse_app_rankings_page(app_rankings.decode(body), 0)
        assert (info.value.field, info.value.row) == (field, 0)


def app_wire_page(page: dict[str, Any], offset: int = 0) -> Any:
    return wire_pass(page, app_rankings, app_rankings._WirePage, app_rankings._wire_page, offset)


def test_app_page_non_object_row_is_rejected_on_the_fast_path() -> None:
    page = app_page(0, 3)
    page["data"][1] = [1001, "x", 2, 1, 1]
    assert app_rankings._fast_page(page["data"], 0) is None
    assert app_wire_page(page) == NOT_WIRE
    with pytest.raises(InvalidResponseError, match="not an object"):
        parse_app_rankings_page(app_rankings.decode(json.dumps(page).encode()), 0)


def test_app_page_subclasses_are_read_as_the_row_by_row_checks_read_them() -> None:
    expected = parse_app_rankings_page(app_page(0, 3), 0)[1]
    page = app_page(0, 3)
    page["data"][0] = Row(
        page["data"][0],
        app_id=Count(1000),
        app_name=Text(page["data"][0]["app_name"]),
        total_tokens=Text(page["data"][0]["total_tokens"]),
    )
    page["data"][1]["total_requests"] = str(
        page["data"][1]["total_requests"]
    )  # a digit string beside integers
    assert parse_app_rankings_page(page, 0)[1] == expected
    fast = app_rankings._fast_page(app_page(0, 3)["data"], 0)
    assert fast == expected
    assert [type(v) for v in msgspec.structs.astuple(fast[0])] == [int, str, int, int, int]
    assert app_wire_page(app_page(0, 3)) == expected
    mixed = json.dumps(page).encode()  # a digit string beside integers: the checks row by row
    assert app_wire_page(page) is None
    assert parse_app_rankings_page(app_rankings.decode(mixed), 0)[1] == expected
    assert app_wire_page(app_page(100, 2), 100) == parse_app_rankings_page(app_page(100, 2), 100)[1]
    assert parse_app_rankings_page({**app_page(0, 0)}, 0)[1] == []
