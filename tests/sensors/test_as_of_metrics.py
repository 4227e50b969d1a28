"""The as_of sensor's probes as metrics, in a real run with StatsD on (see :mod:`tests.observing`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.observing import observe

from .conftest import FAST_OPTIONS, SensorRun, utc_today

pytestmark = pytest.mark.integration


def test_each_probe_is_counted_with_its_outcome(
    sensor_dag: SensorRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor_dag.define(f"deferrable=False, {FAST_OPTIONS}")
    # the first probe is answered "not served yet" (the API's 400 for a day it has no data for)
    sensor_dag.api.emulator.inject(
        "payload",
        times=1,
        path="/datasets/rankings-daily",
        status=400,
        body={
            "error": {"code": 400, "message": "start_date must not be after the last complete day"}
        },
    )
    observer = observe(sensor_dag.dag_id, tmp_path, monkeypatch)
    try:
        day = utc_today() - timedelta(days=2)
        observer.run((day + timedelta(days=1)).isoformat())
        assert observer.total("sensor.probes", outcome="incomplete") == 1
        assert observer.total("sensor.probes", outcome="complete") == 1
        assert observer.total("sensor.probes") == 2 == sensor_dag.api.probes()
        assert (
            observer.total("api.requests", endpoint="datasets.rankings-daily", status_class="4xx")
            == 1
        )
        assert (
            observer.total("api.requests", endpoint="datasets.rankings-daily", status_class="2xx")
            == 1
        )
    finally:
        observer.statsd.close()
