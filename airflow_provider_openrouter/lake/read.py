"""Read committed partitions back as records, the same records whichever format holds them.

:func:`read_records` follows the reader rule of :mod:`airflow_provider_openrouter.lake.storage`
(manifest first, then the data file it names, checked against its sha256) and decodes the file:

* integers come back as ``int`` (JSON integers; parquet ``int64`` and ``decimal128(38, 0)``);
* numbers with a fraction as :class:`~decimal.Decimal`, exact: JSON number literals with all their
  digits; parquet decimals as stored; parquet ``double`` as the shortest decimal that round-trips
  (the text JSON Lines would hold for the same float);
* dates as the ISO ``YYYY-MM-DD`` strings the records held when written (JSON Lines keeps the
  string; parquet ``date32`` is turned back into it), so a partition reads the same in both formats;
* strings, booleans and nulls as they are.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.exceptions import OpenRouterError
from airflow_provider_openrouter.lake.formats import pyarrow_modules
from airflow_provider_openrouter.lake.manifest import input_citations
from airflow_provider_openrouter.lake.storage import (
    CommittedPartition,
    PartitionIntegrityError,
    join,
    read_partition,
)

__all__ = ["PartitionMissingError", "citations", "read_partitions", "read_records"]


class PartitionMissingError(OpenRouterError):
    """A partition asked for has no ``_manifest.json``: it was never committed (or was deleted)."""

    def __init__(self, missing: Sequence[str], needed_by: str = "") -> None:
        self.missing = list(missing)
        others = f" (nor have {len(self.missing) - 1} more: {', '.join(self.missing[1:])})"
        super().__init__(
            f"{self.missing[0]} has no committed partition"
            + (f": {needed_by}" if needed_by else " (no _manifest.json)")
            + (others if len(self.missing) > 1 else "")
            + ". Nothing was written; run the task that writes it first."
        )


def _directory(partition: ObjectStoragePath | str, conn_id: str | None) -> ObjectStoragePath:
    if isinstance(partition, ObjectStoragePath):
        return partition
    if isinstance(partition, str) and "://" in partition:
        return ObjectStoragePath(partition, conn_id=conn_id)
    raise TypeError(
        f"expected a partition directory (ObjectStoragePath or URL such as file:///abs/path or "
        f"s3://bucket/key) or a CommittedPartition, got {partition!r}"
    )


def read_records(
    partition: CommittedPartition | ObjectStoragePath | str,
    *,
    conn_id: str | None = None,
    date_column: str | None = None,
) -> list[dict[str, Any]]:
    """The records of a committed partition, with exact types (see the module docstring).

    :param partition: a :class:`CommittedPartition` (from :func:`read_partition`), or the partition's
        directory as an ``ObjectStoragePath`` or URL (``conn_id`` names the store's connection).
    :param date_column: a column of ``YYYY-MM-DD`` days (e.g. rankings-daily's ``date``): check that
        every record's day lies in the window its manifest says the partition covers.
    :raises PartitionMissingError: the directory holds no committed partition.
    :raises PartitionIntegrityError: the data file does not match its manifest, cannot be decoded, or
        holds a record outside the partition's window.
    """
    if not isinstance(partition, CommittedPartition):
        directory = _directory(partition, conn_id)
        committed = read_partition(directory)
        if committed is None:
            raise PartitionMissingError([str(directory)])
        partition = committed
    records = _decode(partition)
    if date_column is not None:
        _check_days(partition, records, date_column)
    return records


def _check_days(partition: CommittedPartition, records: list[dict[str, Any]], column: str) -> None:
    window = partition.manifest.get("window") or {}
    start, end = window.get("start"), window.get("end")
    if not (isinstance(start, str) and isinstance(end, str)):
        raise PartitionIntegrityError(
            f"{partition.directory}: the manifest gives no window to check {column!r} against."
        )
    for index, record in enumerate(records):
        day = record.get(column)
        if not (isinstance(day, str) and start <= day <= end and len(day) == len(start)):
            raise PartitionIntegrityError(
                f"{partition.directory}: record {index} has {column}={day!r}, outside the partition's "
                f"window {start}..{end}. Do not use this partition; rerun the task that writes it."
            )


def _decode(partition: CommittedPartition) -> list[dict[str, Any]]:
    data_format = partition.manifest.get("format") or partition.data_file.rsplit(".", 1)[-1]
    try:
        if data_format == "parquet":
            return _parquet_records(partition.data)
        if data_format == "jsonl":
            return _jsonl_records(partition.data)
    except (ValueError, OSError) as exc:
        raise PartitionIntegrityError(
            f"{partition.directory}: {partition.data_file} matches its sha256 but cannot be decoded as "
            f"{data_format} ({exc}). Rerun the task that writes this partition."
        ) from None
    raise PartitionIntegrityError(
        f"{partition.directory}: the manifest's format {data_format!r} is not one this reader knows "
        "(jsonl, parquet). Upgrade airflow-provider-openrouter."
    )


def read_partitions(
    base: ObjectStoragePath, keys: Iterable[str], *, needed_by: str = ""
) -> list[CommittedPartition]:
    """The committed partitions ``base/key`` for every key, in order, each verified by the reader rule.

    Raises :class:`PartitionMissingError` naming every missing one (after reading them all), so a
    job that needs all its inputs can fail before writing anything; ``needed_by`` says why in its
    message (e.g. ``"the weekly rollup needs all seven days"``).
    """
    found: list[CommittedPartition] = []
    missing: list[str] = []
    for key in keys:
        directory = join(base, key)
        partition = read_partition(directory)
        if partition is None:
            missing.append(str(directory))
        else:
            found.append(partition)
    if missing:
        raise PartitionMissingError(missing, needed_by)
    return found


def _jsonl_records(data: bytes) -> list[dict[str, Any]]:
    # split on \n only: values may contain U+2028 and other characters str.splitlines() splits on
    records = [
        json.loads(line, parse_float=Decimal) for line in data.decode("utf-8").split("\n") if line
    ]
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"line {index + 1} is not a JSON object")
    return records


def _parquet_records(data: bytes) -> list[dict[str, Any]]:
    pa, pq = pyarrow_modules()
    table = pq.read_table(io.BytesIO(data))
    converters = [_converter(pa, field.type) for field in table.schema]
    names = table.schema.names
    return [
        {name: convert(row[name]) for name, convert in zip(names, converters, strict=True)}
        for row in table.to_pylist()
    ]


def _converter(pa: Any, kind: Any) -> Any:
    if pa.types.is_date(kind):
        return lambda v: v.isoformat() if isinstance(v, (date, datetime)) else v
    if pa.types.is_decimal(kind):
        if kind.scale == 0:  # integers beyond int64 (see formats.parquet_bytes)
            return lambda v: int(v) if v is not None else None
        return lambda v: v
    if pa.types.is_floating(kind):
        return lambda v: Decimal(repr(v)) if v is not None else None
    return lambda v: v


def citations(partitions: Iterable[CommittedPartition]) -> list[str]:
    """The distinct citation lines of committed partitions, in order (one per source and ``as_of``),
    e.g. to cite the inputs of a derived dataset; partitions of your own data have none."""
    return input_citations([partition.manifest for partition in partitions])
