"""The commit protocol on local files: atomic, idempotent, restatements recorded, leftovers cleaned."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.lake import manifest, storage

from .helpers import expected_bytes, manifest_for, stage, write


@pytest.fixture
def part(tmp_path: Path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/lake/rankings_daily/date=2025-07-04")


def _files(part: ObjectStoragePath) -> list[str]:
    return sorted(os.listdir(part.path))


def _stat(part: ObjectStoragePath) -> dict[str, tuple[int, int]]:
    return {
        name: (os.stat(f"{part.path}/{name}").st_ino, os.stat(f"{part.path}/{name}").st_mtime_ns)
        for name in _files(part)
    }


def test_first_write_commits_data_then_manifest_and_nothing_else(part: ObjectStoragePath) -> None:
    assert storage.read_partition(part) is None
    staged = write(part, 1)
    assert staged.status == "created" and staged.previous_sha256 is None
    assert _files(part) == ["_manifest.json", "data.jsonl"]
    committed = storage.read_partition(part)
    assert committed is not None
    assert committed.data == expected_bytes(1)
    assert committed.data_file == "data.jsonl"
    assert committed.sha256 == storage.sha256_hex(expected_bytes(1)) == committed.manifest["sha256"]
    assert committed.manifest["row_count"] == 3 and committed.manifest["size"] == len(
        expected_bytes(1)
    )


def test_identical_rerun_touches_nothing(part: ObjectStoragePath) -> None:
    write(part, 1)
    before = _stat(part)
    staged = write(part, 1)
    assert staged.status == "unchanged" and staged.pending_name is None
    assert _stat(part) == before  # same inodes, same mtimes: not even rewritten with equal bytes


def test_restatement_replaces_the_data_and_records_the_previous_sha(
    part: ObjectStoragePath,
) -> None:
    first = write(part, 1)
    second = write(part, 2)
    assert second.status == "restated" and second.previous_sha256 == first.sha256 != second.sha256
    committed = storage.read_partition(part)
    assert committed is not None and committed.data == expected_bytes(2)
    assert committed.manifest["previous_sha256"] == first.sha256
    assert _files(part) == ["_manifest.json", "data.jsonl"]
    third = write(part, 2)
    assert third.status == "unchanged"
    assert storage.read_partition(part).manifest["previous_sha256"] == first.sha256  # history kept


def test_switching_format_replaces_the_old_data_file(part: ObjectStoragePath) -> None:
    write(part, 1)
    staged = write(part, 1, "parquet")
    assert staged.status == "replaced"
    assert _files(part) == ["_manifest.json", "data.parquet"]
    committed = storage.read_partition(part)
    assert committed.manifest["schema"]["total_tokens"] == "int64"
    assert committed.data == expected_bytes(1, "parquet")


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(part: ObjectStoragePath) -> None:
    write(part, 1)
    for name in (
        "_tmp-0123abcd-data.jsonl",
        "_tmp-99-_manifest.json",
        "_pending-00112233aabbccdd.jsonl",
    ):
        (part / name).write_bytes(b"half a fi")
    before = _stat(part)
    assert storage.read_partition(part).data == expected_bytes(1)  # readers ignore them
    staged = write(part, 1)
    assert staged.status == "unchanged"
    assert _files(part) == ["_manifest.json", "data.jsonl"]
    assert _stat(part) == {
        k: v for k, v in before.items() if not k.startswith(("_tmp-", "_pending-"))
    }


def test_a_commit_interrupted_after_its_commit_point_reads_new_and_is_finished_next_run(
    part: ObjectStoragePath,
) -> None:
    write(part, 1)
    staged = stage(part, 2)
    # the commit point alone: the manifest names the pending file, data.jsonl is still the old one
    storage.write_atomic(
        part / storage.MANIFEST_NAME,
        manifest.dumps(manifest.with_data_file(manifest_for(staged), staged.pending_name)),
    )
    committed = storage.read_partition(part)
    assert committed.data == expected_bytes(2) and committed.data_file == staged.pending_name
    again = write(part, 2)
    assert again.status == "repaired"
    assert again.previous_sha256 == staged.previous_sha256  # the restatement stays recorded
    assert _files(part) == ["_manifest.json", "data.jsonl"]
    assert storage.read_partition(part).data_file == "data.jsonl"


def test_a_damaged_data_file_is_detected_by_readers_and_repaired_by_the_next_run(
    part: ObjectStoragePath,
) -> None:
    write(part, 1)
    (part / "data.jsonl").write_bytes(b'{"tampered":true}\n')
    with pytest.raises(
        storage.PartitionIntegrityError, match="does not match the manifest's sha256"
    ):
        storage.read_partition(part)
    assert write(part, 1).status == "repaired"
    assert storage.read_partition(part).data == expected_bytes(1)


def test_a_missing_data_file_or_broken_manifest_is_never_read(part: ObjectStoragePath) -> None:
    write(part, 1)
    os.unlink(f"{part.path}/data.jsonl")
    with pytest.raises(storage.PartitionIntegrityError, match="'data.jsonl' is missing"):
        storage.read_partition(part)
    (part / storage.MANIFEST_NAME).write_bytes(b"{")
    with pytest.raises(storage.PartitionIntegrityError, match="not valid UTF-8 JSON"):
        storage.read_partition(part)
    staged = write(part, 1)
    assert staged.status == "repaired" and staged.previous_sha256 is None
    assert storage.read_partition(part).data == expected_bytes(1)


def test_a_data_file_without_manifest_is_not_a_partition(part: ObjectStoragePath) -> None:
    os.makedirs(part.path)
    (part / "data.jsonl").write_bytes(expected_bytes(1))
    assert storage.read_partition(part) is None
    assert write(part, 1).status == "created"


def test_reader_retries_when_a_commit_lands_between_its_two_reads(
    part: ObjectStoragePath, mocker
) -> None:
    write(part, 1)
    real_read = storage.read_bytes
    calls = {"n": 0}

    def racing_read(path: ObjectStoragePath) -> bytes | None:
        calls["n"] += 1
        if calls["n"] == 2:  # just after the manifest was read: another run commits version 2
            write(part, 2)
        return real_read(path)

    mocker.patch.object(storage, "read_bytes", side_effect=racing_read)
    committed = storage.read_partition(part)
    assert committed.data == expected_bytes(2)


def test_discarding_a_staged_partition_leaves_the_committed_one(part: ObjectStoragePath) -> None:
    write(part, 1)
    staged = stage(part, 2)
    assert staged.pending_name in _files(part)
    storage.discard_staged(staged)
    assert _files(part) == ["_manifest.json", "data.jsonl"]
    assert storage.read_partition(part).data == expected_bytes(1)


def test_a_pending_file_named_by_the_manifest_survives_cleanup_and_discard(
    part: ObjectStoragePath,
) -> None:
    staged = stage(part, 2)
    storage.write_atomic(
        part / storage.MANIFEST_NAME,
        manifest.dumps(manifest.with_data_file(manifest_for(staged), staged.pending_name)),
    )
    again = stage(part, 2)
    assert again.pending_in_use
    storage.discard_staged(again)
    assert storage.read_partition(part).data == expected_bytes(2)


def test_commit_refuses_a_manifest_for_other_bytes_and_a_vanished_staged_file(
    part: ObjectStoragePath,
) -> None:
    staged = stage(part, 1)
    with pytest.raises(ValueError, match="sha256 differs"):
        storage.commit_partition(staged, {**manifest_for(staged), "sha256": "0" * 64})
    os.unlink(f"{part.path}/{staged.pending_name}")
    with pytest.raises(storage.PartitionIntegrityError, match="vanished or changed"):
        storage.commit_partition(staged, manifest_for(staged))
    assert storage.read_partition(part) is None  # nothing was committed


def test_manifest_is_the_last_file_written(part: ObjectStoragePath, mocker) -> None:
    spy = mocker.spy(storage, "write_atomic")
    write(part, 1)
    names = [call.args[0].name for call in spy.call_args_list]
    assert names == [names[0], "_manifest.json", "data.jsonl", "_manifest.json"]
    assert names[0].startswith("_pending-")
    final = json.loads((part / "_manifest.json").read_bytes())
    assert final["data_file"] == "data.jsonl"
