"""Partitions in any object store: layout, serialisation, and an atomic, idempotent commit.

Layout (pinned: downstream tools read it), under an ``output_uri`` (any ``ObjectStoragePath`` URL)::

    rankings_daily/date=YYYY-MM-DD/{data.jsonl|data.parquet, _manifest.json}
    app_rankings/sort=S/category=C|all/subcategory=SC|all/window=START_END/{data.*, _manifest.json}

``data.jsonl`` holds one JSON object per row, in the API's order, UTF-8, ``\\n``-terminated
(split on ``\\n`` only: app names may contain U+2028). Counts are JSON integers, exact.
``data.parquet`` holds the same rows with exact types: ``int64``, or ``decimal128(38, 0)`` for a
column whose values exceed int64 (the manifest's ``schema`` says which); dates are ``date32``.

Writer protocol (one partition; every single-file write is atomic: on local files a temp file
``_tmp-*`` in the same directory, fsync, ``os.replace``; on object stores one PUT, which is
visible all at once or not at all):

0. Delete leftovers of killed runs: ``_tmp-*`` files, and ``_pending-*`` files that the current
   manifest does not name.
1. If the current manifest has the new bytes' sha256, names ``data.<ext>``, and that file's bytes
   match it: touch nothing (``unchanged``).
2. Write the new bytes to ``_pending-<sha256[:16]>.<ext>`` (staging, invisible to readers).
   The operators stage every partition of a run, after validating every response, before step 3.
3. Write ``_manifest.json`` naming the pending file. **This is the commit point.**
4. Write ``data.<ext>`` (read back from the pending file and checked against the sha256).
5. Write ``_manifest.json`` naming ``data.<ext>``; ``previous_sha256`` records the replaced data
   when it differed (a restatement).
6. Delete the pending file and any ``data.*`` of another format.

A run killed anywhere leaves each partition, for readers following the rule below, either as it
was (before step 3) or completely new (from step 3 on); the next run of the same partition
finishes or redoes the commit and removes the leftovers. Partitions commit one after another:
a run killed mid-way leaves some partitions new and the rest as they were, each consistent.
One writer per partition at a time (the same partition written by two concurrent runs may lose
a pending file to the other run's cleanup; that run then fails and can be retried).

Reader rule (:func:`read_partition` implements it):

1. A partition exists only if its ``_manifest.json`` exists; ignore every file whose name starts
   with ``_`` or ``.`` and any data file in a directory without a manifest.
2. Read the file named by the manifest's ``data_file`` (normally ``data.<ext>``; after a crash
   between steps 3 and 5 it is the pending file), never a fixed name.
3. Check that its sha256 equals the manifest's ``sha256``. If not, a commit happened between
   your two reads: read the manifest again and retry; never use bytes that do not match.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.exceptions import InvalidParameterError, OpenRouterError
from airflow_provider_openrouter.lake import manifest as manifests
from airflow_provider_openrouter.lake.formats import (  # re-exported: storage is the public face of I/O
    FORMATS,
    jsonl_bytes,
    parquet_bytes,
    require_format,
    serialise,
    sha256_hex,
)

MANIFEST_NAME = "_manifest.json"
PENDING_PREFIX = "_pending-"
TEMP_PREFIX = "_tmp-"
LOCAL_PROTOCOLS = ("file", "local", "")

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "PENDING_PREFIX",
    "TEMP_PREFIX",
    "CommittedPartition",
    "PartitionIntegrityError",
    "StagedPartition",
    "clean_leftovers",
    "commit_partition",
    "data_file_name",
    "discard_staged",
    "join",
    "jsonl_bytes",
    "parquet_bytes",
    "read_partition",
    "require_format",
    "rewrite_manifest",
    "serialise",
    "sha256_hex",
    "stage_partition",
    "write_atomic",
]

P = TypeVar("P", str, ObjectStoragePath)


class PartitionIntegrityError(OpenRouterError):
    """A committed partition whose manifest does not match its data file (or cannot be read), or
    whose data is not what its manifest says (e.g. rows of another day)."""


# ------------------------------------------------------------------ layout (pure)
def data_file_name(data_format: str) -> str:
    """``data.jsonl`` or ``data.parquet``."""
    check_format(data_format)
    return f"data.{data_format}"


def check_format(data_format: str) -> None:
    """Raise :class:`InvalidParameterError` unless ``data_format`` is ``jsonl`` or ``parquet``."""
    if data_format not in FORMATS:
        raise InvalidParameterError(
            f"format={data_format!r} is not supported; use one of {', '.join(FORMATS)}."
        )


def join(base: P, key: str) -> P:
    if isinstance(base, str):
        return base.rstrip("/") + "/" + key
    return base.joinpath(*key.split("/"))


# ------------------------------------------------------------------ store primitives
def is_local(path: ObjectStoragePath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def write_atomic(path: ObjectStoragePath, data: bytes) -> None:
    """Make ``path`` hold exactly ``data``, all at once: temp file + fsync + rename locally, one PUT elsewhere."""
    if not is_local(path):
        path.write_bytes(data)
        return
    target = path.path
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}-{os.path.basename(target)}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_bytes(path: ObjectStoragePath) -> bytes | None:
    """The file's bytes, or None if it does not exist."""
    try:
        if is_local(path):
            with open(path.path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def list_names(directory: ObjectStoragePath) -> list[str]:
    """Names of the files directly inside ``directory`` (empty if it does not exist)."""
    try:
        if is_local(directory):
            return sorted(os.listdir(directory.path))
        refresh(directory)
        return sorted(
            p.rstrip("/").rsplit("/", 1)[-1] for p in directory.fs.ls(directory.path, detail=False)
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def refresh(directory: ObjectStoragePath) -> None:
    """Forget cached listings of ``directory`` (fsspec caches them; other processes may have written)."""
    if not is_local(directory):
        directory.fs.invalidate_cache(directory.path)


def remove(path: ObjectStoragePath) -> None:
    try:
        if is_local(path):
            os.unlink(path.path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------ reader
@dataclass(frozen=True)
class CommittedPartition:
    """A partition read by the reader rule: its manifest and the verified bytes it names."""

    directory: ObjectStoragePath
    manifest: dict[str, Any]
    data: bytes

    @property
    def sha256(self) -> str:
        return str(self.manifest["sha256"])

    @property
    def data_file(self) -> str:
        return str(self.manifest["data_file"])


def read_partition(directory: ObjectStoragePath, attempts: int = 3) -> CommittedPartition | None:
    """Read a partition by the reader rule; None if it has no manifest (it does not exist).

    Raises :class:`PartitionIntegrityError` if the manifest is unreadable or its data file is
    missing or does not match its sha256 (re-reading first in case a commit was in flight).
    """
    refresh(directory)
    raw = read_bytes(directory / MANIFEST_NAME)
    problem = ""
    for _ in range(max(1, attempts)):
        if raw is None:
            return None
        try:
            manifest = manifests.loads(raw)
        except manifests.ManifestError as exc:
            raise PartitionIntegrityError(
                f"{directory}: {exc}. Rerun the task that writes this partition."
            ) from None
        data = read_bytes(directory / manifest["data_file"])
        if data is not None and sha256_hex(data) == manifest["sha256"]:
            return CommittedPartition(directory, manifest, data)
        problem = "is missing" if data is None else "does not match the manifest's sha256"
        again = read_bytes(directory / MANIFEST_NAME)
        if again == raw:
            break
        raw = again
    raise PartitionIntegrityError(
        f"{directory}: data file {manifest['data_file']!r} {problem}. Do not use this partition; "
        "rerun the task that writes it."
    )


# ------------------------------------------------------------------ writer
@dataclass(frozen=True)
class StagedPartition:
    """A partition whose new bytes are staged (or found identical), ready to commit.

    ``status`` is ``created`` (no previous manifest), ``restated`` (different data replaced,
    ``previous_sha256`` set), ``replaced`` (another format replaced), ``repaired`` (same data, but
    the last commit was unfinished or damaged) or ``unchanged`` (nothing will be touched).
    """

    directory: ObjectStoragePath
    key: str
    data_format: str
    sha256: str
    size: int
    row_count: int
    status: str
    previous_sha256: str | None
    pending_name: str | None
    pending_in_use: bool = False
    #: Column types of a parquet file (recorded in the manifest), None for JSON Lines.
    schema: Mapping[str, str] | None = None

    @property
    def data_file(self) -> str:
        return data_file_name(self.data_format)


def clean_leftovers(directory: ObjectStoragePath, keep: str | None) -> list[str]:
    """Delete temp files and unreferenced pending files left by killed runs; return their names."""
    removed = []
    for name in list_names(directory):
        if (name.startswith(TEMP_PREFIX) or name.startswith(PENDING_PREFIX)) and name != keep:
            remove(directory / name)
            removed.append(name)
    return removed


def stage_partition(
    directory: ObjectStoragePath,
    key: str,
    data: bytes,
    data_format: str,
    row_count: int,
    schema: Mapping[str, str] | None = None,
) -> StagedPartition:
    """Steps 0-2 of the writer protocol: clean leftovers, compare, write the pending file if needed."""
    check_format(data_format)
    refresh(directory)
    raw = read_bytes(directory / MANIFEST_NAME)
    current: dict[str, Any] | None = None
    if raw is not None:
        try:
            current = manifests.loads(raw)
        except manifests.ManifestError:
            current = None
    referenced = current["data_file"] if current else None
    clean_leftovers(directory, keep=referenced)
    digest = sha256_hex(data)
    canonical = data_file_name(data_format)
    previous: str | None = None
    if current is None:
        status = "created" if raw is None else "repaired"
    elif current["sha256"] == digest:
        if current["data_file"] == canonical:
            existing = read_bytes(directory / canonical)
            if existing is not None and sha256_hex(existing) == digest:
                return StagedPartition(
                    directory,
                    key,
                    data_format,
                    digest,
                    len(data),
                    row_count,
                    "unchanged",
                    current.get("previous_sha256"),
                    None,
                    schema=schema,
                )
        status, previous = "repaired", current.get("previous_sha256")
    else:
        same_format = current.get("format", data_format) == data_format
        status, previous = ("restated" if same_format else "replaced"), current["sha256"]
    pending = f"{PENDING_PREFIX}{digest[:16]}.{data_format}"
    write_atomic(directory / pending, data)
    return StagedPartition(
        directory,
        key,
        data_format,
        digest,
        len(data),
        row_count,
        status,
        previous,
        pending,
        pending_in_use=pending == referenced,
        schema=schema,
    )


def commit_partition(staged: StagedPartition, manifest: Mapping[str, Any]) -> None:
    """Steps 3-6 of the writer protocol. ``manifest`` must carry the staged sha256."""
    if staged.status == "unchanged" or staged.pending_name is None:
        return
    if manifest.get("sha256") != staged.sha256:
        raise ValueError("the manifest's sha256 differs from the staged data")
    directory = staged.directory
    data = read_bytes(directory / staged.pending_name)
    if data is None or sha256_hex(data) != staged.sha256:
        raise PartitionIntegrityError(
            f"{directory}: the staged file {staged.pending_name} vanished or changed before it was committed "
            "(is another run writing this partition?). Nothing was committed; retry the task."
        )
    write_atomic(
        directory / MANIFEST_NAME,
        manifests.dumps(manifests.with_data_file(manifest, staged.pending_name)),
    )
    write_atomic(directory / staged.data_file, data)
    write_atomic(
        directory / MANIFEST_NAME,
        manifests.dumps(manifests.with_data_file(manifest, staged.data_file)),
    )
    remove(directory / staged.pending_name)
    for other in FORMATS:
        if other != staged.data_format:
            remove(directory / data_file_name(other))


def rewrite_manifest(staged: StagedPartition, manifest: Mapping[str, Any]) -> None:
    """Record a new verification of an ``unchanged`` partition (e.g. its numbers became final):
    one atomic write of ``_manifest.json`` naming the same data file with the same sha256; the data
    file itself is not touched (same bytes, same modification time)."""
    if staged.status != "unchanged":
        raise ValueError(
            "only an unchanged partition's manifest is rewritten alone; commit the others"
        )
    if manifest.get("sha256") != staged.sha256:
        raise ValueError("the manifest's sha256 differs from the partition's data")
    write_atomic(
        staged.directory / MANIFEST_NAME,
        manifests.dumps(manifests.with_data_file(manifest, staged.data_file)),
    )


def discard_staged(staged: StagedPartition) -> None:
    """Remove a staged file that will not be committed, and local directories left empty by it.

    Best effort (the next run cleans up anyway); never raises, so it cannot hide the error that caused it.
    """
    if not staged.pending_name or staged.pending_in_use or staged.status == "unchanged":
        return
    try:
        remove(staged.directory / staged.pending_name)
        if is_local(staged.directory):
            directory = staged.directory.path
            for _ in staged.key.split(
                "/"
            ):  # the partition's own directories, never the output root
                os.rmdir(directory)
                directory = os.path.dirname(directory)
    except Exception:
        pass
