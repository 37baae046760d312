"""On-disk feature cache keyed by image sha256 and extractor id, in shards that make runs resumable.

Layout, one folder per extractor config and gendetect version (``config_id`` hashes the extractor's name and
parameters: architecture, weights tag, preprocessing)::

    <root>/<extractor config_id>/extractor.json            the extractor config and provenance
    <root>/<extractor config_id>/shard-00000.npy            (n, dim) float32 features
    <root>/<extractor config_id>/shard-00000.parquet        sha256, path of each row
    <root>/<extractor config_id>/shard-00000.done.json      written last: the shard is complete

A shard counts only once its ``done.json`` exists, and files are renamed into place, so a run killed at any moment
leaves either a complete shard or nothing: a rerun extracts what is missing, and no row is lost or duplicated.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gendetect.atomic import atomic_path, atomic_write
from gendetect.features.base import FeatureExtractor
from gendetect.hub import cache_root
from gendetect.provenance import provenance


def default_store_root() -> Path:
    return cache_root() / "features"


class FeatureStore:
    """Cached features of one extractor under ``root``."""

    def __init__(self, root: str | os.PathLike, extractor: FeatureExtractor) -> None:
        from gendetect import __version__

        # the package version is part of the key: a new release may compute a feature differently
        self.root = Path(root)
        self.dir = self.root / f"{extractor.config_id}-gendetect{__version__}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = extractor.dim
        meta = self.dir / "extractor.json"
        if not meta.exists():
            atomic_write(meta, json.dumps({**extractor.get_config(), "provenance": provenance()}, indent=2).encode())
        self._index: dict[str, tuple[int, int]] | None = None
        self._indexed: set[int] = set()  # shards already in the index
        self._arrays: dict[int, np.ndarray] = {}

    # -- reading -----------------------------------------------------------------------------------------------
    def shards(self) -> list[int]:
        """Ids of the complete shards, in order."""
        return sorted(int(p.name.split("-")[1].split(".")[0]) for p in self.dir.glob("shard-*.done.json"))

    def _load_index(self) -> dict[str, tuple[int, int]]:
        if self._index is None:
            self._index = {}
            self.refresh()
        return self._index

    def refresh(self) -> None:
        """Index the shards completed since the last look (e.g. by other processes or Ray actors); shards already
        indexed are not read again, since a complete shard never changes."""
        if self._index is None:
            self._index = {}
        for shard in self.shards():
            if shard in self._indexed:
                continue
            shas = pq.read_table(self._path(shard, "parquet"), columns=["sha256"]).column("sha256").to_pylist()
            for row, sha in enumerate(shas):
                self._index.setdefault(sha, (shard, row))  # first occurrence wins: no duplicates
            self._indexed.add(shard)

    def __len__(self) -> int:
        return len(self._load_index())

    def __contains__(self, sha256: object) -> bool:
        return sha256 in self._load_index()

    def get(self, sha256s: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """``(X (N, dim) float32 with NaN rows for misses, found (N,) bool)``."""
        index = self._load_index()
        X = np.full((len(sha256s), self.dim), np.nan, np.float32)
        found = np.zeros(len(sha256s), bool)
        for i, sha in enumerate(sha256s):
            where = index.get(sha) if sha else None
            if where is not None:
                shard, row = where
                if shard not in self._arrays:
                    self._arrays[shard] = np.load(self._path(shard, "npy"), mmap_mode="r")
                X[i] = self._arrays[shard][row]
                found[i] = True
        return X, found

    # -- writing -----------------------------------------------------------------------------------------------
    def add(self, sha256s: Sequence[str], X: np.ndarray, paths: Sequence[str] | None = None) -> int:
        """Store rows not already present as a new complete shard; returns how many were added."""
        index = self._load_index()
        keep = [i for i, sha in enumerate(sha256s) if sha and sha not in index]
        keep = list({sha256s[i]: i for i in reversed(keep)}.values())[::-1]  # dedupe within the batch
        if not keep:
            return 0
        shard = self._claim((self.shards() or [-1])[-1] + 1)
        X = np.ascontiguousarray(np.asarray(X, np.float32)[keep])
        with atomic_path(self._path(shard, "npy")) as buf, open(buf, "wb") as f:
            np.save(f, X)
        table = pa.table({"sha256": [sha256s[i] for i in keep], "path": [paths[i] if paths else None for i in keep]})
        with atomic_path(self._path(shard, "parquet")) as tmp:
            pq.write_table(table, tmp)
        atomic_write(
            self._path(shard, "done.json"), json.dumps({"n": len(keep), "dim": self.dim, "time": time.time()}).encode()
        )
        for row, i in enumerate(keep):
            index[sha256s[i]] = (shard, row)
        self._indexed.add(shard)
        return len(keep)

    def _claim(self, shard: int) -> int:
        """The first free shard id from ``shard`` on, claimed atomically (``O_EXCL``): several processes or Ray
        actors writing to one store never pick the same id, and a half-written shard of a killed run is never
        reused."""
        while True:
            if not (self._path(shard, "done.json").exists() or self._path(shard, "npy").exists()):
                try:
                    os.close(os.open(self._path(shard, "claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    return shard
                except FileExistsError:
                    pass
            shard += 1

    def iter_shards(self) -> Iterator[tuple[list[str], np.ndarray]]:
        """Stream the store: ``(keys, X (n, dim) float32 memory-mapped)`` per complete shard, in shard order.

        Lets indexes over millions of vectors be built without loading the store into memory.
        """
        for shard in self.shards():
            keys = pq.read_table(self._path(shard, "parquet"), columns=["sha256"]).column("sha256").to_pylist()
            yield keys, np.load(self._path(shard, "npy"), mmap_mode="r")

    def _path(self, shard: int, ext: str) -> Path:
        return self.dir / f"shard-{shard:05d}.{ext}"
