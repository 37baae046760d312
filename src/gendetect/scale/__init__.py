"""Scale-out: the same sharded work on the local engine (in-process) or on a Ray cluster (Ray Data).

The unit of work is a **shard**: a fixed slice of the sorted input. A finished shard is a Parquet file of its rows
plus a ``done.json`` written last, under the run's output folder. Either engine skips finished shards, so a run
resumes on either engine with no row lost or written twice. See :func:`run_shards` and :func:`run_scan`.
"""

from gendetect.scale.engines import ScanTask, run_scan, run_scan_sharded
from gendetect.scale.runner import ENGINES, Shard, ShardedRun, ShardTask, plan_shards, run_sharded, run_shards

__all__ = [
    "ENGINES",
    "ScanTask",
    "Shard",
    "ShardTask",
    "ShardedRun",
    "plan_shards",
    "run_scan",
    "run_scan_sharded",
    "run_sharded",
    "run_shards",
]
