"""Data file formats: JSON Lines (default, no dependency) and parquet (extra ``parquet``).

Pure functions from records (``Row.to_record()`` dicts, in the API's order) to bytes.
Serialisation is deterministic: the same records give the same bytes, hence the same sha256,
which is how reruns over unchanged data leave files untouched.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from airflow_provider_openrouter.exceptions import InvalidParameterError, InvalidResponseError

FORMATS = ("jsonl", "parquet")
INT64_MAX = 2**63 - 1
DECIMAL38_MAX = 10**38 - 1


def jsonl_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """One compact JSON object per line, keys in record order, UTF-8 (non-ASCII kept as is).

    A ``Decimal`` value becomes a JSON number literal with all its digits (no float rounding);
    :func:`airflow_provider_openrouter.lake.read.read_records` reads it back as the same ``Decimal``.
    """
    out = io.BytesIO()
    for record in records:
        try:
            out.write(_json_line(record, ascii_only=False).encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate cannot be UTF-8: escape this record instead
            out.write(_json_line(record, ascii_only=True).encode("ascii"))
        out.write(b"\n")
    return out.getvalue()


def _json_line(record: Mapping[str, Any], ascii_only: bool) -> str:
    if not any(isinstance(value, Decimal) for value in record.values()):
        return json.dumps(record, ensure_ascii=ascii_only, separators=(",", ":"), sort_keys=False)
    return (
        "{"
        + ",".join(
            json.dumps(str(key), ensure_ascii=ascii_only) + ":" + _json_value(value, ascii_only)
            for key, value in record.items()
        )
        + "}"
    )


def _json_value(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidParameterError(f"{value} is not a finite number; JSON cannot hold it.")
        return format(
            value, "f"
        )  # every digit, never an exponent (a Decimal without a fraction reads back as int)
    return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))


def exact_jsonl_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    """:func:`jsonl_bytes` for answers that must stay exact (analytics rows): every value must be
    None, bool, str, int or a finite ``Decimal``; a float or NaN is refused, never rounded."""
    for record in records:
        for value in record.values():
            if value is None or isinstance(value, (bool, str, int)):
                continue
            if isinstance(value, Decimal) and value.is_finite():
                continue
            raise InvalidResponseError(
                f"{value!r} ({type(value).__name__}) cannot be written as an exact JSON scalar."
            )
    return jsonl_bytes(records)


def parquet_bytes(
    records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
) -> tuple[bytes, dict[str, str]]:
    """A parquet file of ``records`` with exact types, and the type chosen for each column.

    Column kinds: ``date`` (ISO strings -> ``date32``), ``string``, ``float`` (``double``), and
    integers (any other kind): ``int64``; a column holding a value above 2**63 - 1 becomes ``decimal128(38, 0)``
    (exact, and readable by Spark, DuckDB, pandas, unlike ``uint64``). Needs pyarrow (extra ``parquet``).
    """
    pa, pq = pyarrow_modules()
    arrays = []
    schema: dict[str, str] = {}
    for name, kind in columns:
        values = [record[name] for record in records]
        if kind == "date":
            arrays.append(pa.array([date.fromisoformat(v) for v in values], type=pa.date32()))
            schema[name] = "date32"
        elif kind == "string":
            arrays.append(pa.array(values, type=pa.string()))
            schema[name] = "string"
        elif kind == "float":
            arrays.append(
                pa.array([None if v is None else float(v) for v in values], type=pa.float64())
            )
            schema[name] = "double"
        else:
            biggest = max(values, default=0)
            if biggest <= INT64_MAX:
                arrays.append(pa.array(values, type=pa.int64()))
                schema[name] = "int64"
            elif biggest <= DECIMAL38_MAX:
                arrays.append(pa.array([Decimal(v) for v in values], type=pa.decimal128(38, 0)))
                schema[name] = "decimal128(38,0)"
            else:
                raise InvalidResponseError(
                    f"{name} value {biggest} exceeds 38 digits; no exact parquet type holds it.",
                    field=name,
                )
    table = pa.Table.from_arrays(arrays, names=[name for name, _ in columns])
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue(), schema


def serialise(
    records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], data_format: str
) -> tuple[bytes, dict[str, str] | None]:
    """Bytes of a data file in ``data_format`` and, for parquet, its column types."""
    require_format(data_format)
    if data_format == "jsonl":
        return jsonl_bytes(records), None
    return parquet_bytes(records, columns)


def require_format(data_format: str) -> None:
    """Raise :class:`InvalidParameterError` unless ``data_format`` is known and its library importable."""
    if data_format not in FORMATS:
        raise InvalidParameterError(
            f"format={data_format!r} is not supported; use one of {', '.join(FORMATS)}."
        )
    if data_format == "parquet":
        pyarrow_modules()


def pyarrow_modules() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidParameterError(
            "format='parquet' needs pyarrow: pip install 'airflow-provider-openrouter[parquet]', or use format='jsonl'."
        ) from None
    return pa, pq


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
