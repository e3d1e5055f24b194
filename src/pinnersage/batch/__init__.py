"""The daily batch job (paper sections 3.4, 3.6, 6): every user's profile from 90 days of actions.

Each user's actions in the window are clustered (Algorithm 1) and summarised as (medoid,
importance) pairs (Algorithm 2), on this machine (:mod:`.local`) or on Apache Spark (:mod:`.spark`),
with one shared per-partition function (:mod:`.job`), and published as an immutable, checksummed
snapshot (:mod:`.snapshot`).
"""

from pinnersage.batch.job import (
    PartitionStats,
    ProfileContext,
    RunWindow,
    partition_of,
    profile_partition,
    profile_partition_reference,
)
from pinnersage.batch.run import BatchResult, run_batch
from pinnersage.batch.snapshot import Snapshot, content_sha256, open_snapshot, publish_snapshot

__all__ = [
    "BatchResult",
    "PartitionStats",
    "ProfileContext",
    "RunWindow",
    "Snapshot",
    "content_sha256",
    "open_snapshot",
    "partition_of",
    "profile_partition",
    "profile_partition_reference",
    "publish_snapshot",
    "run_batch",
]
