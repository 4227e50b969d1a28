"""Land partitions with the commit protocol: the one landing path of every dataset.

:class:`Batch` holds the partitions of one run: each is staged first (hidden ``_pending-*`` files,
see :mod:`airflow_provider_openrouter.lake.storage`), and only once all are staged are they
committed, one after another, each with its manifest (:func:`~.manifest.build_manifest`). On any
error inside the ``with`` block, the staged files of partitions whose commit never started are
removed, so a failed run leaves the previous output exactly as it was. A partition whose bytes are
already committed is not touched at all; one whose data changed records ``previous_sha256``.

The dataset operators land OpenRouter's answers through it; :func:`land_partitions` is the public
API for users' own derived datasets (for example a weekly rollup of the daily partitions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.exceptions import InvalidParameterError
from airflow_provider_openrouter.lake import storage
from airflow_provider_openrouter.lake.manifest import (
    CITATIONS,
    build_manifest,
    check_dataset_name,
    input_record,
)
from airflow_provider_openrouter.windows.intervals import Window

__all__ = ["Batch", "DerivedPartition", "land_partitions"]

log = logging.getLogger(__name__)


#: The manifest fields of one staged partition, beyond those the staged file itself gives.
class _WarningLog(Protocol):
    """A stdlib logger, or a task's ``self.log`` (a structlog logger on Airflow 3.1+)."""

    def warning(self, msg: str, /, *args: Any) -> Any: ...


_B = TypeVar("_B", bound="Batch")

ManifestFields = Callable[[storage.StagedPartition, Any, "Window | None"], Mapping[str, Any]]


class Batch:
    """The partitions of one run: all staged first, then committed in order (a context manager).

    ``items`` holds ``(staged partition, info, window)`` per partition, in commit order after
    :meth:`commit`; ``info`` is whatever the caller needs to build that partition's manifest.
    """

    def __init__(
        self,
        base: ObjectStoragePath,
        data_format: str,
        log: _WarningLog = log,
    ) -> None:
        storage.require_format(data_format)
        self.base, self.data_format, self.log = base, data_format, log
        #: ``(partition, info, window)``; the window is a ``Window`` or None (derived data not tied to days)
        self.items: list[tuple[storage.StagedPartition, Any, Any]] = []
        self.uncommitted: list[storage.StagedPartition] = []

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            for partition in self.uncommitted:
                storage.discard_staged(partition)

    def stage(
        self,
        key: str,
        records: Sequence[Mapping[str, Any]],
        columns: Sequence[tuple[str, str]],
        *,
        window: Window | None = None,
        info: Any = None,
    ) -> storage.StagedPartition:
        """Serialise ``records`` and stage them under ``base/key`` (steps 0-2 of the protocol)."""
        data, schema = self.serialise(records, columns)
        partition = storage.stage_partition(
            storage.join(self.base, key), key, data, self.data_format, len(records), schema
        )
        self.items.append((partition, info, window))
        self.uncommitted.append(partition)
        return partition

    def serialise(
        self, records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
    ) -> tuple[bytes, dict[str, str] | None]:
        """The data file's bytes in the batch's format and, for parquet, its column types."""
        return storage.serialise(records, columns, self.data_format)

    def commit(self, fields: ManifestFields) -> list[storage.StagedPartition]:
        """Commit every staged partition in window order (steps 3-6), each with its manifest:
        ``build_manifest(**fields(partition, info, window), <the staged file's own facts>)``."""
        return self.commit_manifests(
            lambda partition, info, window: build_manifest(
                **fields(partition, info, window), **file_facts(partition)
            )
        )

    def commit_manifests(
        self,
        manifest_for: Callable[[storage.StagedPartition, Any, Window | None], Mapping[str, Any]],
    ) -> list[storage.StagedPartition]:
        """Commit every staged partition in window order, each with ``manifest_for(partition, info, window)``."""
        self.items.sort(key=lambda item: (item[2] is None, item[2].start if item[2] else None))
        for partition, info, window in self.items:
            self.uncommitted = [p for p in self.uncommitted if p is not partition]
            storage.commit_partition(partition, manifest_for(partition, info, window))
            if partition.status == "restated":
                self.log.warning(
                    "Restated upstream: %s changed (sha256 %s -> %s).",
                    partition.key,
                    partition.previous_sha256,
                    partition.sha256,
                )
        return [partition for partition, _, _ in self.items]


def file_facts(partition: storage.StagedPartition) -> dict[str, Any]:
    """The manifest fields a staged partition gives: key, data file, checksum, size, rows, schema."""
    return {
        "partition": partition.key,
        "row_count": partition.row_count,
        "data_format": partition.data_format,
        "data_file": partition.data_file,
        "sha256": partition.sha256,
        "size": partition.size,
        "previous_sha256": partition.previous_sha256,
        "schema": partition.schema,
    }


# ---------------------------------------------------------------------- derived datasets
@dataclass(frozen=True)
class DerivedPartition:
    """One partition of a user's derived dataset, for :func:`land_partitions`.

    :param key: its path under the output root, ``/``-separated, e.g. ``rankings_weekly_share/week=2025-03-03``.
    :param records: its rows (flat dicts: str, int, Decimal, float, bool or None values), in order.
    :param inputs: the committed partitions it was computed from (from ``read_partition`` or
        ``read_partitions``): the manifest records each one's dataset, partition, window, sha256,
        row count, ``as_of`` and citation.
    :param window: the days it covers, if any.
    :param meta: the manifest's ``meta`` (``as_of`` defaults to the newest input's).
    :param citation: the manifest's citation (default: ``Derived from:`` and the inputs' citations).
    :param extra: further manifest keys (they may not replace the manifest's own).
    """

    key: str
    records: Sequence[Mapping[str, Any]]
    inputs: Sequence[storage.CommittedPartition] = ()
    window: Window | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    citation: str | None = None
    extra: Mapping[str, Any] | None = None


def land_partitions(
    base: ObjectStoragePath | str,
    dataset: str,
    partitions: Iterable[DerivedPartition],
    *,
    columns: Sequence[tuple[str, str]] | None = None,
    format: str = "jsonl",
    caveats: str | None = None,
    license: str | None = None,
    conn_id: str | None = None,
) -> list[storage.StagedPartition]:
    """Land the partitions of a derived dataset under ``base`` with the commit protocol.

    Every partition is staged before any is committed; then each is committed with its manifest
    (the same schema as the fetched datasets', with ``inputs`` and ``computed_at`` as provenance).
    If anything fails, nothing half-written is visible and the partitions not yet committed keep
    their previous data. A partition whose bytes are unchanged is left untouched (``status``
    ``unchanged``); one whose data changed gets ``previous_sha256`` (``status`` ``restated``).

    :param base: the output root, an ``ObjectStoragePath`` or URL (``conn_id`` names its connection).
    :param dataset: the derived dataset's name (lowercase, digits, ``-_.``; not an OpenRouter dataset's).
    :param columns: ``(name, kind)`` per column (kinds ``string``, ``int``, ``float``, ``date``); needed
        for ``format="parquet"``, ignored for JSON Lines.
    :param caveats: the manifests' caveats, ``license`` their licence (default: OpenRouter's public
        ones when any input is public, none when every input is your own data, e.g. analytics).
    :returns: the partitions in commit order; each has ``key``, ``status`` (``created``,
        ``restated``, ``replaced``, ``repaired`` or ``unchanged``), ``sha256``, ``previous_sha256``
        and ``row_count``.
    """
    try:
        check_dataset_name(dataset)
    except ValueError as exc:
        raise InvalidParameterError(str(exc)) from None
    if dataset in CITATIONS:
        raise InvalidParameterError(
            f"dataset {dataset!r} is fetched from OpenRouter; give your derived dataset a name of its own."
        )
    if isinstance(base, str):
        if "://" not in base:
            raise InvalidParameterError(
                f"base={base!r} has no scheme; use file:///absolute/path or s3://bucket/prefix."
            )
        base = ObjectStoragePath(base, conn_id=conn_id)
    items = list(partitions)
    keys = [item.key for item in items]
    for item in items:
        if not isinstance(item, DerivedPartition):
            raise InvalidParameterError(
                f"land_partitions takes DerivedPartition items, got {type(item).__name__}."
            )
        parts = item.key.split("/")
        if not item.key or any(p in ("", ".", "..") or p.startswith(("_", ".")) for p in parts):
            raise InvalidParameterError(
                f"partition key {item.key!r} must be a relative path of plain names (none empty, '.', '..' "
                "or starting with '_' or '.')."
            )
        if not all(isinstance(i, storage.CommittedPartition) for i in item.inputs):
            raise InvalidParameterError(
                f"{item.key}: inputs must be committed partitions (from read_partition)."
            )
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise InvalidParameterError(f"partition keys given twice: {duplicates}.")
    if format == "parquet" and columns is None:
        raise InvalidParameterError(
            "format='parquet' needs columns=[(name, kind), ...] (kinds string, int, float, date)."
        )
    computed_at = datetime.now(timezone.utc)

    def fields(
        _: storage.StagedPartition, item: DerivedPartition, window: Window | None
    ) -> dict[str, Any]:
        inputs = [input_record(i.manifest) for i in item.inputs]
        newest = max((str(i["as_of"]) for i in inputs if i["as_of"]), default=None)
        meta = {**({"as_of": newest} if newest else {}), **item.meta}
        return {
            "dataset": dataset,
            "window": window,
            "meta": meta,
            "inputs": inputs,
            "computed_at": computed_at,
            "citation": item.citation,
            "license": license,
            "caveats": caveats,
            "extra": item.extra,
        }

    with Batch(base, format) as batch:
        for item in items:
            batch.stage(item.key, item.records, columns or (), window=item.window, info=item)
        landed = batch.commit(fields)
    written = sum(1 for p in landed if p.status != "unchanged")
    log.info("%s: wrote %d of %d partition(s) under %s.", dataset, written, len(landed), base)
    return landed
