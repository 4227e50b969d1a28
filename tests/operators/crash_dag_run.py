"""Run one DAG through ``dag.test()`` in a fresh process and SIGKILL it right after the N-th atomic write.

``python crash_dag_run.py DAG_ID LOGICAL_DATE N``. The Airflow environment (home, DB, DAGs folder,
connections) comes from the parent test process. Exit code 3 means the crash point was never reached.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

from airflow_provider_openrouter.lake import storage


def main() -> None:
    dag_id, logical_date, kill_at = (
        sys.argv[1],
        datetime.fromisoformat(sys.argv[2]),
        int(sys.argv[3]),
    )
    real_write = storage.write_atomic
    writes = {"n": 0}

    def write_atomic(path, data):
        real_write(path, data)
        writes["n"] += 1
        if writes["n"] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    storage.write_atomic = write_atomic

    from airflow_provider_openrouter.compat import DagBag

    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag(dag_id)
    dag.test(logical_date=logical_date)
    sys.exit(3)


if __name__ == "__main__":
    main()
