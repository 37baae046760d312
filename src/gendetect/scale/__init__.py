"""Scale-out: the same sharded work on the local engine (in-process) or on a Ray cluster (Ray Data).

The unit of work is a **shard**: a fixed slice of the sorted input. A finished shard is a Parquet file of its rows
plus a ``done.json`` written last, under the run's output folder. Either engine skips finished shards, so a run
resumes on either engine with no row lost or written twice. See :func:`run_shards` and :func:`run_scan`;
:func:`scan_paths` is the one entry point from files and folders to scan rows, on any engine or none.

The names below are imported on first use (PEP 562): a scan that runs no shards never imports pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gendetect._lazy import lazy_exports

if TYPE_CHECKING:
    from gendetect.scale.engines import ScanTask as ScanTask, run_scan as run_scan, run_scan_sharded as run_scan_sharded
    from gendetect.scale.options import ENGINES as ENGINES, EngineOptions as EngineOptions
    from gendetect.scale.runner import (
        Shard as Shard,
        ShardedRun as ShardedRun,
        ShardTask as ShardTask,
        plan_shards as plan_shards,
        run_sharded as run_sharded,
        run_shards as run_shards,
    )
    from gendetect.scale.scanning import ScanRun as ScanRun, scan_paths as scan_paths

_EXPORTS = {
    "ENGINES": "gendetect.scale.options",
    "EngineOptions": "gendetect.scale.options",
    "ScanRun": "gendetect.scale.scanning",
    "scan_paths": "gendetect.scale.scanning",
    "ScanTask": "gendetect.scale.engines",
    "run_scan": "gendetect.scale.engines",
    "run_scan_sharded": "gendetect.scale.engines",
    "Shard": "gendetect.scale.runner",
    "ShardTask": "gendetect.scale.runner",
    "ShardedRun": "gendetect.scale.runner",
    "plan_shards": "gendetect.scale.runner",
    "run_sharded": "gendetect.scale.runner",
    "run_shards": "gendetect.scale.runner",
}


# `from gendetect.scale import engines` reaches the submodules too
__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, submodules=("engines", "features", "options", "runner", "scanning")
)


__all__ = [
    "ENGINES",
    "EngineOptions",
    "ScanRun",
    "ScanTask",
    "Shard",
    "ShardTask",
    "ShardedRun",
    "plan_shards",
    "run_scan",
    "run_scan_sharded",
    "run_sharded",
    "run_shards",
    "scan_paths",
]
