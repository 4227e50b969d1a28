"""Run one DAG through ``dag.test()`` in a fresh process, as a worker would see it for observability.

``python observed_dag_run.py DAG_ID LOGICAL_DATE``. The Airflow environment (home, DB, DAGs folder,
connections) comes from the parent test process, plus its ``[openlineage]`` and ``[metrics]``
settings: a fresh process loads the OpenLineage plugin with them, and ``Stats`` is initialised from
them exactly as the task runner does before running a task (``dag.test`` runs tasks in process and
skips that step). Prints the run's state last.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime


def main() -> None:
    dag_id, logical_date = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(
        factory=stats_utils.get_stats_factory(),
        export_legacy_names=conf.getboolean("metrics", "legacy_names_on"),
    )

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag(dag_id)
    run = dag.test(logical_date=logical_date)
    print(f"STATE={getattr(run.state, 'value', run.state)}", flush=True)


if __name__ == "__main__":
    main()
