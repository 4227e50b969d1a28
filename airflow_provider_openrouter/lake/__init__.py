"""The lake: partitions committed to any object store, their manifests, formats and the chunk cache.

Public API for readers and for users' own derived datasets:

* :func:`read_partition` (the reader rule: manifest first, data file checked against its sha256),
  :func:`read_partitions` (several, failing on any missing one) and :func:`read_records` (decode a
  committed partition, JSON Lines or parquet, into records with exact types) and :func:`citations`
  (the distinct citation lines of partitions, to cite what a derived dataset was computed from);
* :func:`land_partitions` with :class:`DerivedPartition`: write a derived dataset with the same
  commit protocol and manifest schema as the operators.
"""

from airflow_provider_openrouter.lake.land import DerivedPartition, land_partitions
from airflow_provider_openrouter.lake.read import (
    PartitionMissingError,
    citations,
    read_partitions,
    read_records,
)
from airflow_provider_openrouter.lake.storage import (
    CommittedPartition,
    PartitionIntegrityError,
    StagedPartition,
    read_partition,
)

__all__ = [
    "CommittedPartition",
    "DerivedPartition",
    "PartitionIntegrityError",
    "PartitionMissingError",
    "StagedPartition",
    "citations",
    "land_partitions",
    "read_partition",
    "read_partitions",
    "read_records",
]
