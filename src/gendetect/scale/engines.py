"""Sharded scanning on the engine layer: ``local`` (this process) or ``ray`` (Ray Data, one model actor per CPU/GPU).

:func:`run_scan` cuts the files into shards and runs a :class:`ScanTask` on each through
:func:`gendetect.scale.runner.run_sharded`, so both engines produce identical rows (same order, same scores) and a
run started on one resumes on the other. A rerun over a folder that gained or changed files scans only those
(each committed shard records its files' size and mtime), and :func:`run_scan_sharded` hands back the run, whose
final table is written from the shard files by pyarrow (:meth:`~gendetect.scale.runner.ShardedRun.write_parquet`).

On the local engine with ``jobs > 1``, one worker pool serves every shard (:meth:`ScanTask.session`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.pipeline import DetectionPipeline, load_model, scan
from gendetect.scale.options import ENGINES, EngineOptions
from gendetect.scale.runner import FAULT_ENV, Shard, ShardedRun, ShardTask, plan_shards, run_sharded

logger = logging.getLogger(__name__)

__all__ = ["ENGINES", "FAULT_ENV", "ScanTask", "plan_shards", "run_scan", "run_scan_sharded", "score_shard"]


def score_shard(
    shard: Shard,
    pipeline: DetectionPipeline,
    *,
    max_pixels: int,
    threshold: float | None,
    jobs: int = 1,
    captions: dict[str, str | None] | None = None,
    evidence: bool = True,
) -> list[dict[str, Any]]:
    """The rows of one shard of files, in order, their list values (findings, warnings) as JSON text
    (:func:`gendetect.output.nested_as_json`; :meth:`gendetect.scale.ScanRun.rows` and :func:`run_scan` give
    them back as lists)."""
    from gendetect.output import nested_as_json

    files = [str(f) for f in shard.items]
    caps = [captions.get(f) for f in files] if captions is not None else None
    rows = scan(
        files, pipeline, jobs=jobs, max_pixels=max_pixels, threshold=threshold, captions=caps, evidence=evidence
    )
    return [nested_as_json(r.to_dict()) for r in rows]


class ScanTask(ShardTask):
    """Score the files of a shard with a saved model (loaded once per worker)."""

    stamps_items = True  # items are files: resume incrementally

    def __init__(
        self,
        model_dir: str,
        model_version: str,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        threshold: float | None = None,
        jobs: int = 1,
        device: str | None = None,
        captions: dict[str, str | None] | None = None,
        pipeline: DetectionPipeline | None = None,
        evidence: bool = True,
    ) -> None:
        self.model_dir, self.model_version = model_dir, model_version
        self.max_pixels, self.threshold, self.jobs, self.device = max_pixels, threshold, jobs, device
        self.captions = captions
        self.evidence = evidence  # read the files' evidence (gendetect.evidence) into the rows
        self.num_gpus = 1.0 if device and device.startswith("cuda") else 0.0
        self._pipeline = pipeline

    def plan(self) -> dict[str, Any]:
        caps = json.dumps(self.captions, sort_keys=True) if self.captions else ""
        return {
            "task": "scan",
            "model": self.model_version,
            "threshold": self.threshold,
            "max_pixels": self.max_pixels,
            "captions_sha256": hashlib.sha256(caps.encode()).hexdigest()[:16] if caps else None,
            **({} if self.evidence else {"evidence": False}),  # absent when on: earlier runs still resume
        }

    def setup(self) -> None:
        if self._pipeline is None:
            self._pipeline = load_model(self.model_dir, device=self.device)

    def session(self) -> contextlib.AbstractContextManager[Any]:
        """One worker pool, started after the model is loaded, for every shard this worker runs."""
        if self.jobs == 1 or self._pipeline is None:
            return contextlib.nullcontext()
        from gendetect.features.extract import WorkerPool

        return WorkerPool(self._pipeline.extractor, self.jobs)

    def run(self, shard: Shard, out_dir: Path) -> list[dict[str, Any]]:
        return score_shard(
            shard,
            self._pipeline,
            max_pixels=self.max_pixels,
            threshold=self.threshold,
            jobs=self.jobs,
            captions=self.captions,
            evidence=self.evidence,
        )

    def __getstate__(self) -> dict[str, Any]:  # actors load the model from model_dir
        return {**self.__dict__, "_pipeline": None}


def run_scan(
    files: Sequence[str],
    model: DetectionPipeline | str | os.PathLike | None,
    out_dir: str | os.PathLike,
    options: EngineOptions | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Scan ``files`` in shards under ``out_dir``; returns every row as a dict, in input order (see
    :func:`run_scan_sharded`, which streams them instead, for large runs)."""
    from gendetect.output import nested_from_json

    return [nested_from_json(d) for d in run_scan_sharded(files, model, out_dir, options, **kwargs).rows()]


def run_scan_sharded(
    files: Sequence[str],
    model: DetectionPipeline | str | os.PathLike | None,
    out_dir: str | os.PathLike,
    options: EngineOptions | None = None,
    *,
    jobs: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    device: str | None = None,
    captions: Sequence[str | None] | None = None,
    evidence: bool = True,
    **engine: Any,
) -> ShardedRun:
    """Scan ``files`` in shards under ``out_dir``; returns the run (rows are read from its shards).

    The run's rows hold the list columns (``findings``, ``warnings``, ``evidence_skipped``) as JSON text, as its
    shard files and Parquet do; :func:`gendetect.output.nested_from_json` gives them back as lists, as
    :func:`run_scan` and :class:`gendetect.scale.ScanRun` do.

    Args:
        options: the engine and its settings (:class:`~gendetect.scale.options.EngineOptions`): ``"local"`` (this
            process, ``jobs`` worker processes shared by every shard) or ``"ray"`` (one model actor per CPU, or per
            GPU with ``device="cuda"``; ``workers`` of them at ``address``), and the ``shard_size``.
        jobs: worker processes per engine worker for decoding and feature extraction.
        device: run a torch extractor there ("cuda": one GPU per Ray actor).
        captions: one caption per file, for caption-aware models.
        evidence: read each file's evidence and fuse it into the verdict (see :mod:`gendetect.evidence`).
        engine: ``engine=``, ``shard_size=``, ``address=``, ``workers=``, ``progress=`` as separate keywords (older
            callers); they override ``options``' fields.
    """
    opts = EngineOptions.resolve(options, **engine)
    pipeline = load_model(model, device=device)
    files = [str(f) for f in files]
    caption_map = dict(zip(files, captions)) if captions is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = pipeline.info.get("path")
        if not model_dir and opts.engine != "local":  # an in-memory model: hand the actors a saved copy
            model_dir = str(pipeline.save(Path(tmp) / "model"))
        task = ScanTask(
            str(model_dir or ""),
            pipeline.version,
            max_pixels=max_pixels,
            threshold=threshold,
            jobs=jobs,
            device=device,
            captions=caption_map,
            pipeline=pipeline,
            evidence=evidence,
        )
        return run_sharded(task, files, out_dir, opts)
