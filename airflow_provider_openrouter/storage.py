"""Former home of the lake's storage functions, kept so that documented imports keep working.

New code imports :mod:`airflow_provider_openrouter.lake` (the public reader and writer).
"""

from airflow_provider_openrouter.lake.storage import *  # noqa: F403
from airflow_provider_openrouter.lake.storage import CommittedPartition, read_partition  # noqa: F401
