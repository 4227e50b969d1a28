"""The lake: partitions committed to any object store, their manifests, formats and the chunk cache.

Public API for readers and for users' own derived datasets: :func:`read_partition`.
"""

from airflow_provider_openrouter.lake.storage import CommittedPartition, read_partition

__all__ = ["CommittedPartition", "read_partition"]
