"""Scale-out: the same sharded scan on the local engine (in-process) or on a Ray cluster (Ray Data).

The unit of work is a **shard**: a fixed slice of the sorted input files. A finished shard is a Parquet file of
its rows plus a ``done.json`` written last, under one output folder. Either engine skips finished shards, so a run
resumes on either engine with no row lost or written twice. See :func:`run_scan`.
"""

from gendetect.scale.engines import ENGINES, plan_shards, run_scan

__all__ = ["ENGINES", "plan_shards", "run_scan"]
