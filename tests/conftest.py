"""The shared Airflow test environment of the whole suite.

At import time, before anything imports Airflow, this module points Airflow at a private,
throw-away home (removed at the end of the session, or by the next session if this one was killed):

* ``AIRFLOW_HOME`` = a fresh temp dir, with the SQLite metadata DB ``airflow.db`` inside;
* ``AIRFLOW__CORE__DAGS_FOLDER`` = ``$AIRFLOW_HOME/dags`` (``dag.test()`` only runs DAGs found
  there: it syncs the DAG bundle first). Tests write DAG files into it with :func:`write_dag`;
* no example DAGs, DAGs unpaused at creation, no unit-test-mode config overlay (Airflow runs with
  its normal defaults, as in production).

Fixtures for every test module (operators, sensor, example DAGs):

* ``airflow_db`` (session): migrates the metadata DB once (~5 s); requested by the others.
* ``dags_folder``: the configured DAGs folder (a ``Path``).
* ``write_dag(dag_id_or_name, source) -> Path``: write one DAG file; removed after the test so
  that each ``dag.test()`` parses only the files of the running test.
* ``openrouter_conn(emulator, conn_id="openrouter_test", **extra) -> conn_id``: an ``openrouter``
  connection (``AIRFLOW_CONN_<ID>`` env var, JSON) to an emulator or any base URL; pacing is
  lifted (``requests_per_minute`` 10000) unless ``extra`` says otherwise.
* ``airflow_conn(conn_id, **fields) -> conn_id``: any other connection, e.g. an ``aws`` one.
* ``run_dag(dag_id, logical_date) -> DagRunResult``: parse the DAGs folder, run the DAG once in
  process through ``dag.test(logical_date=...)`` with the real metadata DB, and return the run's
  state, each task's state, their XComs and asset events. ``logical_date`` decides the data
  interval through the DAG's timetable (manual inference: with
  ``CronDataIntervalTimetable("0 0 * * *")``, 2025-07-05T00:00Z gives [07-04, 07-05)).

Task logs go to the process's stdout/stderr: use ``capfd`` to assert on them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

_PREFIX = "openrouter-airflow-home-"


def _remove_stale_homes() -> None:
    """Delete the homes of earlier sessions that were killed before their atexit ran (pid gone)."""
    for path in Path(tempfile.gettempdir()).glob(_PREFIX + "*-*"):
        pid = path.name[len(_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


_remove_stale_homes()
_HOME = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
(_HOME / "dags").mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(_HOME / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)


def _task_log_to_this_test() -> None:
    """Airflow 3.0 runs a task in process through logging it never configured for that: stdlib
    handlers bound to the ``sys.stdout`` of the moment logging was set up, and structlog's default
    configuration (no level, colours, ``PrintLogger`` bound to the ``sys.stdout`` of structlog's
    import). Under pytest those streams are earlier tests' captures. Send the task log to the
    current ``sys.stdout``, at INFO (the level the suite configures; at DEBUG Airflow 3.0's
    supervisor echoes each secret it masks), as plain text with plain tracebacks, as later
    Airflow versions do, so that a test finds the task's error message in its capture."""
    import logging
    import sys

    import structlog

    if type(structlog.get_config()["logger_factory"]) is structlog.PrintLoggerFactory:
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.StackInfoRenderer(),
                structlog.dev.set_exc_info,
                structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=True),
                structlog.dev.ConsoleRenderer(
                    colors=False, exception_formatter=structlog.dev.plain_traceback
                ),
            ],
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )
    loggers = [
        logging.getLogger(),
        *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and getattr(handler.stream, "closed", False):
                handler.stream = sys.stdout  # not setStream(): it flushes the closed stream


#: Default emulator API key (see airflow_provider_openrouter.testing.emulator).
EMULATOR_KEY = "sk-or-emulator"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the metadata DB (SQLite) once per session; returns ``AIRFLOW_HOME``."""
    from airflow.utils import db

    db.initdb()
    return _HOME


@pytest.fixture(scope="session")
def dags_folder(airflow_db: Path) -> Path:
    return airflow_db / "dags"


@pytest.fixture
def write_dag(dags_folder: Path) -> Iterator[Callable[[str, str], Path]]:
    """``write_dag(name, source)``: write ``<dags folder>/<name>.py``; all are removed after the test."""
    written: list[Path] = []

    def write(name: str, source: str) -> Path:
        path = dags_folder / f"{name}.py"
        path.write_text(source)
        written.append(path)
        return path

    yield write
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture
def load_dags(dags_folder: Path) -> Callable[[], tuple[Any, list[str]]]:
    """``load_dags()``: parse the DAGs folder with a DagBag; returns it and every warning raised meanwhile."""

    def load() -> tuple[Any, list[str]]:
        import gc
        import warnings

        from airflow_provider_openrouter.compat import DagBag

        gc.collect()  # warnings about objects earlier tests left behind are not the DAGs'
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bag = DagBag(dag_folder=str(dags_folder))
        return bag, [str(w.message) for w in caught]

    return load


@pytest.fixture
def install_example_dag(
    write_dag: Callable[[str, str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Path]:
    """``install_example_dag(path, output_suffix="")``: copy an example DAG file from ``dags/`` into the
    DAGs folder, writing to a fresh local lake (returned) with no retries."""

    def install(dag_file: Path, output_suffix: str = "") -> Path:
        lake = tmp_path / "lake"
        monkeypatch.setenv("OPENROUTER_OUTPUT_URI", lake.as_uri() + output_suffix)
        monkeypatch.delenv("OPENROUTER_OUTPUT_CONN_ID", raising=False)
        monkeypatch.setenv("OPENROUTER_TASK_RETRIES", "0")
        write_dag(dag_file.stem, dag_file.read_text())
        return lake

    return install


def _env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


@pytest.fixture
def airflow_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``airflow_conn(conn_id, conn_type=..., login=..., password=..., host=..., extra={...})``."""

    def make(conn_id: str, **fields: Any) -> str:
        monkeypatch.setenv(
            _env_name(conn_id), json.dumps({k: v for k, v in fields.items() if v is not None})
        )
        return conn_id

    return make


@pytest.fixture
def openrouter_conn(airflow_conn: Callable[..., str]) -> Callable[..., str]:
    """``openrouter_conn(emulator_or_base_url, conn_id="openrouter_test", key=EMULATOR_KEY, **extra)``."""

    def make(
        target: Any, conn_id: str = "openrouter_test", key: str = EMULATOR_KEY, **extra: Any
    ) -> str:
        base_url = target if isinstance(target, str) else target.base_url
        extra.setdefault("requests_per_minute", 10000)
        return airflow_conn(
            conn_id, conn_type="openrouter", host=base_url, password=key, extra=extra
        )

    return make


@dataclass
class DagRunResult:
    """What one ``dag.test()`` run left in the metadata DB."""

    dag_id: str
    run_id: str
    state: str
    task_states: dict[str, str | None]
    xcoms: dict[str, Any] = field(default_factory=dict)
    asset_events: list[dict[str, Any]] = field(default_factory=list)

    def xcom(self, task_id: str) -> Any:
        """The task's ``return_value`` XCom (None if it pushed none)."""
        return self.xcoms.get(task_id)


def _state(state: Any) -> str | None:
    return None if state is None else str(getattr(state, "value", state))


def _collect(dag_id: str, run_id: str, state: str) -> DagRunResult:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        task_states = {ti.task_id: _state(ti.state) for ti in tis}
        xcoms = {
            x.task_id: x.value
            for x in session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=run_id, key="return_value")
            .all()
        }
        events = [
            {"uri": uri, "extra": event.extra, "task_id": event.source_task_id}
            for event, uri in session.query(AssetEvent, AssetModel.uri)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
            .all()
        ]
    return DagRunResult(dag_id, run_id, state, task_states, xcoms, events)


@pytest.fixture
def run_dag(dags_folder: Path) -> Callable[..., DagRunResult]:
    """``run_dag(dag_id, logical_date)``: one real DAG run through ``dag.test()``, in process."""
    from airflow_provider_openrouter.compat import AIRFLOW_VERSION, DagBag

    def run(dag_id: str, logical_date: datetime, **test_kwargs: Any) -> DagRunResult:
        bag = DagBag(dag_folder=str(dags_folder))
        dag = bag.get_dag(dag_id)
        if dag is None:
            raise AssertionError(
                f"DAG {dag_id!r} not found in {dags_folder}; import errors: {bag.import_errors}"
            )
        if AIRFLOW_VERSION < (3, 1, 0):
            # Airflow 3.0's dag.test() does not write the DAG and its assets to the metadata DB
            # (the DAG processor does, in a deployment); later versions sync the bundle themselves.
            from airflow.dag_processing.bundles.manager import DagBundlesManager

            DagBundlesManager().sync_bundles_to_db()
            bag.sync_to_db("dags-folder", None)
            _task_log_to_this_test()
        dag_run = dag.test(logical_date=logical_date, **test_kwargs)
        return _collect(dag_id, dag_run.run_id, str(_state(dag_run.state)))

    return run


@pytest.fixture
def dag_import_error(dags_folder: Path) -> Callable[[str], str]:
    """``dag_import_error(file_name)``: the import error Airflow records for a DAG file ('' if none)."""
    from airflow_provider_openrouter.compat import DagBag

    def error(file_name: str) -> str:
        bag = DagBag(dag_folder=str(dags_folder / file_name))
        return "\n".join(str(v) for v in bag.import_errors.values())

    return error
