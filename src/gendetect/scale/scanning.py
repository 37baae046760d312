"""One entry point from paths to scan rows: :func:`scan_paths`, used by ``gendetect scan`` and the server's jobs.

It does, in one place, what a scan of files and folders needs:

1. **expand** the inputs (:class:`~gendetect.pipeline.ScanInputs`: folders into image files, a row for every input
   that gives none), unless the caller planned them itself (the server confines them to its root first);
2. **look up captions** for caption-aware models (:func:`~gendetect.pipeline.find_captions`);
3. **pick the engine**: in this process, streaming (``engine=None``; ``jobs`` worker processes decode and extract),
   or sharded on the ``local`` or ``ray`` engine (:data:`~gendetect.scale.options.ENGINES`; resumable shards under
   ``shards_dir``);
4. **score per batch** through :func:`gendetect.pipeline.scan`, which every engine runs;
5. **stamp the problem rows** (model and threshold) and give them after the scored rows, with the same keys as
   the scored rows (:func:`~gendetect.pipeline.scan_columns`);
6. **describe the run**: :meth:`ScanRun.metadata` (versions, model, options, times, counts), for a results
   file's metadata (``gendetect scan --meta``, Parquet's footer).

Every input gets exactly one :class:`~gendetect.pipeline.ScanRow`, the one row type of every scan (the CLI's
CSV/JSON/Parquet, the server's uploads and jobs, the shard files of both engines); nothing is dropped.

Example:
    >>> from gendetect.scale import scan_paths
    >>> run = scan_paths(["~/Pictures"], evidence=False)        # doctest: +SKIP
    >>> [(row.path, row.verdict) for row in run]                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gendetect.pipeline as pipeline_module
from gendetect.errors import GendetectError
from gendetect.imageio import DEFAULT_MAX_PIXELS
from gendetect.pipeline import DetectionPipeline, ScanInputs, ScanRow, find_captions, load_model, scan_columns
from gendetect.scale.options import EngineOptions

if TYPE_CHECKING:
    from gendetect.scale.runner import ShardedRun


class ScanRun:
    """The rows of one :func:`scan_paths` call: one :class:`ScanRow` per scanned file, then one per problem.

    Iterating gives every row; :meth:`rows` gives the scored rows alone (one per file) and :attr:`problems` the
    rest, for writers that report them apart. The streaming engine's rows can be taken once; a sharded run's rows
    are read back from its shard files each time (:attr:`sharded` is the run, whose
    :meth:`~gendetect.scale.runner.ShardedRun.write_parquet` writes the table without Python rows).

    Args:
        evidence: the scan's ``evidence`` setting, which decides the problem rows' keys (:func:`scan_columns`).
        options: the options the scan ran with, for :meth:`metadata`.
        started: when the scan started (ISO 8601, UTC; default: now).
    """

    def __init__(
        self,
        pipeline: DetectionPipeline,
        threshold: float,
        inputs: ScanInputs,
        stream: Iterator[ScanRow] | None = None,
        sharded: ShardedRun | None = None,
        *,
        evidence: bool | Sequence[str] = True,
        options: Mapping[str, Any] | None = None,
        started: str | None = None,
    ) -> None:
        self.pipeline, self.threshold, self.inputs = pipeline, threshold, inputs
        self.sharded = sharded
        self._stream = stream
        self.options = dict(options or {})
        self.started = started or _now()
        columns = scan_columns(pipeline, evidence)
        for p in inputs.problems:
            p.stamp(pipeline, threshold).conform(columns)

    @property
    def files(self) -> list[str]:
        return self.inputs.files

    @property
    def problems(self) -> list[ScanRow]:
        """Rows of the inputs that were not scanned (stamped with the model and its rule, :meth:`ScanRow.stamp`)."""
        return self.inputs.problems

    @property
    def skipped(self) -> dict[str, int]:
        return self.inputs.skipped

    def __len__(self) -> int:
        return self.inputs.total

    def rows(self) -> Iterator[ScanRow]:
        """The scored rows, one per file (a file's row shows its name from ``inputs.names`` when given)."""
        names = self.inputs.names
        if self.sharded is not None:
            shown = dict(zip(self.inputs.files, names)) if names is not None else {}
            from gendetect.output import nested_from_json

            for d in self.sharded.rows():
                row = ScanRow.from_dict(nested_from_json(d))
                row.path = shown.get(row.path, row.path)
                yield row
            return
        if self._stream is None:
            raise GendetectError("the rows of this streamed scan were already taken; scan again to read them again")
        stream, self._stream = self._stream, None
        try:
            for i, row in enumerate(stream):
                if names is not None:
                    row.path = names[i]
                yield row
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stop the worker processes now, also when the caller stops early

    def __iter__(self) -> Iterator[ScanRow]:
        yield from self.rows()
        yield from self.problems

    def metadata(self, counts: Mapping[str, int] | None = None, **final: Any) -> dict[str, Any]:
        """What produced this run's rows, as JSON-able data for a results file's metadata.

        ``kind`` ("scan"), ``gendetect`` (its version) and ``versions`` (of the libraries scores depend on),
        ``started``, the ``model`` (``name``, ``version``: the content hash of what decides a score, ``path``,
        ``threshold`` and ``uncertain_from`` as the rows' verdicts follow them), the ``options`` the scan ran with
        (:func:`scan_paths`' keywords: ``max_pixels``, ``evidence``, ``threshold`` as given...), the ``inputs`` as
        given, how many ``files`` were found and ``problems`` refused, and what folders held that was not scanned
        (``skipped``). With ``counts`` (rows by verdict, ``error`` for error rows): ``finished`` (now), ``rows``
        and ``counts``; ``final`` keys are added as they are (``complete``, ``output``...).
        """
        from gendetect.provenance import versions

        libs = versions()
        model = {
            "name": self.pipeline.name,
            "version": self.pipeline.version,
            "path": self.pipeline.info.get("path"),
            "threshold": self.threshold,
            "uncertain_from": self.pipeline.band_start(self.threshold),
        }
        meta: dict[str, Any] = {
            "kind": "scan",
            "gendetect": libs.get("gendetect"),
            "versions": libs,
            "started": self.started,
            "model": model,
            "options": {k: v for k, v in self.options.items() if k != "inputs"},
            "inputs": self.options.get("inputs"),
            "files": len(self.inputs.files),
            "problems": len(self.inputs.problems),
            "skipped": dict(self.inputs.skipped),
        }
        if counts is not None:
            meta["finished"] = _now()
            meta["rows"] = int(sum(counts.values()))
            meta["counts"] = {k: int(counts.get(k, 0)) for k in ("fake", "uncertain", "real", "error")}
        return {**meta, **final}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def scan_paths(
    inputs: Iterable[str | os.PathLike] | str | os.PathLike | ScanInputs,
    model: DetectionPipeline | str | os.PathLike | None = None,
    *,
    recursive: bool = True,
    jobs: int = 1,
    engine: EngineOptions | str | None = None,
    shards_dir: str | os.PathLike | None = None,
    device: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    captions_from: str | os.PathLike | None = None,
    evidence: bool | Sequence[str] = True,
) -> ScanRun:
    """Scan files and folders: every input gets one :class:`~gendetect.pipeline.ScanRow` (see the module docstring).

    Args:
        inputs: files and folders (one str or Path is one input), or :class:`~gendetect.pipeline.ScanInputs`
            planned by the caller (files, problem rows, shown names).
        model: a pipeline, a model directory, a published detector's name, or None for the embedded default.
        recursive: look into sub-folders.
        jobs: worker processes for decoding and feature extraction (per engine worker).
        engine: None scans in this process and streams the rows; an :class:`~gendetect.scale.options.EngineOptions`
            (or an engine name) runs resumable shards under ``shards_dir`` on that engine before returning.
        shards_dir: where a sharded run keeps its shards (a rerun into it resumes).
        device: run a torch extractor there ("cpu", "cuda").
        max_pixels: larger images are refused (decompression-bomb guard) with an error row.
        threshold: override the model's decision threshold on P(fake).
        captions_from: a manifest with captions (else sidecar ``.txt`` files), for caption-aware models.
        evidence: read and fuse what each file says about its origin (:mod:`gendetect.evidence`); a list names
            the checks; False reports the pixel verdict alone.

    Returns:
        The :class:`ScanRun`: iterate it for the rows.
    """
    started = _now()
    pipeline = load_model(model, device=device)
    thr = pipeline.threshold if threshold is None else float(threshold)
    given = None if isinstance(inputs, ScanInputs) else [os.fspath(p) for p in _input_list(inputs)]
    planned = inputs if isinstance(inputs, ScanInputs) else ScanInputs.expand(given or [], recursive=recursive)
    captions = find_captions(planned.files, captions_from) if pipeline.extractor.uses_captions else None
    options: dict[str, Any] = {"max_pixels": max_pixels, "threshold": threshold, "evidence": evidence}
    opts = EngineOptions(engine=engine) if isinstance(engine, str) else engine
    described = {
        "inputs": given,
        "recursive": recursive,
        "jobs": jobs,
        "engine": None if opts is None else opts.to_dict(),
        "shards_dir": None if shards_dir is None else os.fspath(shards_dir),
        "device": device,
        "max_pixels": max_pixels,
        "threshold": threshold,
        "captions_from": None if captions_from is None else os.fspath(captions_from),
        "evidence": evidence if isinstance(evidence, bool) else list(evidence),
    }
    run_info = {"evidence": evidence, "options": described, "started": started}
    if opts is None:
        stream = pipeline_module.scan(planned.files, pipeline, jobs=jobs, captions=captions, **options)
        return ScanRun(pipeline, thr, planned, stream=stream, **run_info)
    if shards_dir is None:
        raise GendetectError("a sharded scan needs a folder for its shards (shards_dir); a rerun into it resumes")
    from gendetect.scale.engines import run_scan_sharded

    run = run_scan_sharded(
        planned.files, pipeline, shards_dir, opts, jobs=jobs, device=device, captions=captions, **options
    )
    return ScanRun(pipeline, thr, planned, sharded=run, **run_info)


def _input_list(inputs: Iterable[str | os.PathLike] | str | os.PathLike) -> list[str | os.PathLike]:
    """One str or Path is one input (as :meth:`ScanInputs.expand` reads it)."""
    return [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)


__all__ = ["ScanRun", "scan_paths"]
