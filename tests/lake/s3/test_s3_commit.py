"""The commit protocol and the reader rule on S3, which has no rename: cut commits read old or new."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_openrouter.api.datasets import rankings_daily
from airflow_provider_openrouter.lake import manifest, storage
from lake import helpers  # tests/lake/helpers.py

from .conftest import BUCKET, objects

pytestmark = pytest.mark.integration


@pytest.fixture
def base(s3_conn: str, s3_prefix: str) -> ObjectStoragePath:
    return ObjectStoragePath(f"s3://{BUCKET}/{s3_prefix}", conn_id=s3_conn)


def _part(base: ObjectStoragePath) -> ObjectStoragePath:
    return storage.join(base, rankings_daily.partition_key(helpers.DAY))


def test_write_rewrite_restate_on_s3(base: ObjectStoragePath, s3: Any, s3_prefix: str) -> None:
    assert storage.read_partition(_part(base)) is None
    assert helpers.write(_part(base), 1).status == "created"
    assert sorted(objects(s3, s3_prefix)) == [
        "rankings_daily/date=2025-07-04/_manifest.json",
        "rankings_daily/date=2025-07-04/data.jsonl",
    ]
    assert helpers.write(_part(base), 1).status == "unchanged"
    second = helpers.write(_part(base), 2)
    assert second.status == "restated"
    committed = storage.read_partition(_part(base))
    assert committed.data == helpers.expected_bytes(2)
    assert committed.manifest["previous_sha256"] == storage.sha256_hex(helpers.expected_bytes(1))


def test_cut_before_the_commit_point_reads_old_and_is_cleaned(
    base: ObjectStoragePath, s3: Any, s3_prefix: str
) -> None:
    helpers.write(_part(base), 1)
    staged = helpers.stage(
        _part(base), 2
    )  # killed here: the pending object exists, nothing committed
    assert f"rankings_daily/date=2025-07-04/{staged.pending_name}" in objects(s3, s3_prefix)
    assert storage.read_partition(_part(base)).data == helpers.expected_bytes(1)
    assert helpers.write(_part(base), 2).status == "restated"
    assert len(objects(s3, s3_prefix)) == 2


def test_cut_after_the_commit_point_reads_new_and_is_finished(
    base: ObjectStoragePath, s3: Any, s3_prefix: str
) -> None:
    helpers.write(_part(base), 1)
    staged = helpers.stage(_part(base), 2)
    storage.write_atomic(
        _part(base) / storage.MANIFEST_NAME,
        manifest.dumps(manifest.with_data_file(helpers.manifest_for(staged), staged.pending_name)),
    )
    # data.jsonl is still the old object: a reader following the manifest gets the new bytes anyway
    assert objects(s3, s3_prefix)[
        "rankings_daily/date=2025-07-04/data.jsonl"
    ] == helpers.expected_bytes(1)
    assert storage.read_partition(_part(base)).data == helpers.expected_bytes(2)
    assert helpers.write(_part(base), 2).status == "repaired"
    assert sorted(objects(s3, s3_prefix)) == [
        "rankings_daily/date=2025-07-04/_manifest.json",
        "rankings_daily/date=2025-07-04/data.jsonl",
    ]
    assert storage.read_partition(_part(base)).data_file == "data.jsonl"


def test_an_object_overwritten_behind_the_manifest_is_refused(
    base: ObjectStoragePath, s3: Any, s3_prefix: str
) -> None:
    helpers.write(_part(base), 1)
    s3.put_object(
        Bucket=BUCKET, Key=f"{s3_prefix}/rankings_daily/date=2025-07-04/data.jsonl", Body=b"{}\n"
    )
    with pytest.raises(
        storage.PartitionIntegrityError, match="does not match the manifest's sha256"
    ):
        storage.read_partition(_part(base))
