"""Feature extraction into the :class:`~gendetect.features.store.FeatureStore` on the engine layer.

``gendetect features extract --engine local|ray`` runs a :class:`FeaturesTask` per shard of records: each worker
builds the extractor once, extracts the shard's images that the store lacks and adds them as a store shard. Store
shard ids are claimed atomically, so any number of actors can write to one store (on a shared filesystem for a
multi-node cluster). The run's own shard log (``<store>/runs/<run id>/shards/``) makes it resumable on either engine,
and the store itself means a rerun over the same images extracts nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gendetect.data.records import ImageRecord
from gendetect.features.base import EXTRACTORS, FeatureExtractor
from gendetect.features.store import FeatureStore
from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.scale.options import EngineOptions
from gendetect.scale.runner import Shard, ShardTask, run_shards

SHARD_SIZE = 512  # records per shard by default


class FeaturesTask(ShardTask):
    """Extract the features of a shard of records into a feature store."""

    def __init__(
        self,
        extractor_config: dict[str, Any],
        store_root: str,
        *,
        jobs: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        extractor: FeatureExtractor | None = None,
        store: FeatureStore | None = None,
    ) -> None:
        self.extractor_config, self.store_root = extractor_config, store_root
        self.jobs, self.max_pixels = jobs, max_pixels
        device = str(extractor_config.get("params", {}).get("device") or "cpu")
        self.num_gpus = 1.0 if device.startswith("cuda") else 0.0
        self._extractor = extractor
        self._store = store

    def plan(self) -> dict[str, Any]:
        return {"task": "features", "extractor": self.extractor_config}

    def setup(self) -> None:
        if self._extractor is None:
            self._extractor = EXTRACTORS.from_config(self.extractor_config)
        if self._store is None:
            self._store = FeatureStore(self.store_root, self._extractor)

    def session(self) -> contextlib.AbstractContextManager[Any]:
        """One worker pool, started after the extractor is built, for every shard this worker runs."""
        if self.jobs == 1 or self._extractor is None:
            return contextlib.nullcontext()
        from gendetect.features.extract import WorkerPool

        return WorkerPool(self._extractor, self.jobs)

    def run(self, shard: Shard, out_dir: Path) -> list[dict[str, Any]]:
        from gendetect.features.featurize import featurize, store_key

        assert self._store is not None and self._extractor is not None, "setup() runs before run()"
        self._store.refresh()  # index what other actors stored meanwhile (new shards only)
        records = [ImageRecord.from_row(dict(row)) for row in shard.items]
        cached = {i for i, r in enumerate(records) if r.status == "ok" and store_key(r, self._extractor) in self._store}
        featurize(
            records, self._extractor, jobs=self.jobs, max_pixels=self.max_pixels, store=self._store, shard_size=10**9
        )
        return [
            {"path": r.path, "sha256": r.sha256, "status": r.status, "error": r.error, "cached": i in cached}
            for i, r in enumerate(records)
        ]

    def __getstate__(self) -> dict[str, Any]:  # workers rebuild the extractor and open the store themselves
        return {**self.__dict__, "_extractor": None, "_store": None}


def extract_to_store(
    records: Sequence[ImageRecord],
    store: FeatureStore,
    extractor: FeatureExtractor,
    options: EngineOptions | None = None,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    **engine: Any,
) -> list[dict[str, Any]]:
    """Fill ``store`` (the feature store of ``extractor``) with the features of ``records`` on an engine.

    Args:
        options: the engine and its settings (:class:`~gendetect.scale.options.EngineOptions`; default: the local
            engine in shards of :data:`SHARD_SIZE` records); ``progress(done, total)`` is called after each shard on
            the local engine.
        jobs: worker processes per engine worker.
        engine: ``engine=``, ``shard_size=``, ``address=``, ``workers=``, ``progress=`` as separate keywords (older
            callers); they override ``options``' fields.

    Returns one row per record (``path, sha256, status, error, cached``). The store is refreshed afterwards, so it
    sees what Ray actors added.
    """
    opts = EngineOptions.resolve(options if options is not None else EngineOptions(shard_size=SHARD_SIZE), **engine)
    local = opts.engine == "local"
    items = [r.to_row() for r in records]
    run_id = hashlib.sha256("\n".join(f"{r.path}\t{r.sha256}\t{r.caption}" for r in records).encode()).hexdigest()
    task = FeaturesTask(
        extractor.get_config(),
        str(store.root),
        jobs=jobs,
        max_pixels=max_pixels,
        extractor=extractor if local else None,
        store=store if local else None,
    )
    rows = run_shards(task, items, store.dir / "runs" / run_id[:16], opts)
    store.refresh()
    return rows
