"""``gendetect scan``: score image files and folders, streaming rows to stdout or ``-o FILE``."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from gendetect.cli import main
from gendetect.cli._common import (
    OUTPUT_FORMATS,
    err_console,
    handle_errors,
    markup_safe,
    print_audit_warnings,
    progress_bar,
)
from gendetect.limits import DEFAULT_MAX_PIXELS


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))
@click.option(
    "-m", "--model", default=None, help="Model directory (from `gendetect train`). Default: the embedded one."
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write results here; format from the suffix.")
@click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS), help="Output format (default: table, or from -o).")
@click.option("-j", "--jobs", default=1, show_default=True, help="Worker processes (0 = all cores).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), help="Override the model's threshold on P(fake).")
@click.option(
    "--max-pixels",
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse larger images (bombs).",
)
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Descend into sub-folders.")
@click.option("--device", default=None, help="Run a torch extractor on this device (cpu, cuda).")
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="Sharded, resumable scan (needs -o; shards in OUTPUT.shards/): local, or ray (Ray Data).",
)
@click.option("--address", default=None, help="Ray cluster address (auto, ray://host:10001); default: start locally.")
@click.option("--workers", type=int, default=None, help="Ray model actors (default: one per CPU, or per GPU on cuda).")
@click.option("--shard-size", default=256, show_default=True, help="Images per shard (the unit of work and resume).")
@click.option(
    "--captions",
    "captions_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Manifest with path and caption columns, for caption-aware models (else sidecar .txt files).",
)
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr (only on a terminal).")
@click.option(
    "--evidence/--no-evidence",
    default=True,
    show_default=True,
    help="Read what each file says about its origin (generator metadata, C2PA, watermark) and fuse it with the "
    "pixel verdict; --no-evidence reports the pixel verdict alone.",
)
@click.option(
    "--meta",
    is_flag=True,
    help="Also write the run's metadata (gendetect version, model, threshold, options, start and end time, counts) "
    "to OUTPUT.meta.json; needs -o.",
)
@handle_errors
def scan(
    paths: tuple[Path, ...],
    model: str | None,
    output: Path | None,
    fmt: str | None,
    jobs: int,
    threshold: float | None,
    max_pixels: int,
    recursive: bool,
    device: str | None,
    engine: str | None,
    address: str | None,
    workers: int | None,
    shard_size: int,
    captions_path: Path | None,
    progress: bool,
    evidence: bool,
    meta: bool,
) -> None:
    """Score image files and folders: P(fake) and a verdict for each image.

    Every input gets one row; an unreadable, corrupt or oversized file gets an error row and the scan goes on.
    """
    from gendetect.features.extract import tune_allocator
    from gendetect.pipeline import load_model

    tune_allocator()  # glibc: keep per-image temporaries instead of re-faulting them (issue 17); else a no-op
    fmt = _output_format(output, fmt)  # an unknown suffix is refused before any work
    if engine is not None and output is None:
        raise click.UsageError("--engine needs -o OUTPUT (shards are kept in OUTPUT.shards/ for resuming)")
    if meta and output is None:
        raise click.UsageError("--meta needs -o OUTPUT (the metadata is written to OUTPUT.meta.json)")
    pipeline = load_model(model, device=device)
    print_audit_warnings(pipeline.info.get("audit"), "model audit")  # once per scan, on stderr
    engine_options = None
    if engine is not None:
        from gendetect.scale.options import EngineOptions

        engine_options = EngineOptions(engine=engine, address=address, workers=workers, shard_size=shard_size)
    run_scan(
        paths,
        pipeline,
        output=output,
        fmt=fmt,
        jobs=jobs,
        threshold=threshold,
        max_pixels=max_pixels,
        recursive=recursive,
        device=device,
        captions_path=captions_path,
        evidence=evidence,
        engine=engine_options,
        progress=progress,
        meta=meta,
    )


def run_scan(
    paths: Iterable[Path],
    pipeline: Any,
    *,
    output: Path | None,
    fmt: str,
    jobs: int,
    threshold: float | None,
    max_pixels: int,
    recursive: bool,
    device: str | None,
    captions_path: Path | None,
    evidence: bool,
    engine: Any,
    progress: bool,
    meta: bool = False,
) -> None:
    """The scan itself, through :func:`gendetect.scale.scan_paths` (expand the inputs, score them in-process, or in
    shards when ``engine`` is an :class:`~gendetect.scale.options.EngineOptions`), then write the rows with the
    summary on stderr, and with ``meta`` the run's metadata to ``OUTPUT.meta.json``."""
    from gendetect.output import meta_path
    from gendetect.scale.scanning import scan_paths

    if engine is not None and output is None:
        raise click.UsageError("--engine needs -o OUTPUT (shards are kept in OUTPUT.shards/ for resuming)")
    result = scan_paths(
        paths,
        pipeline,
        recursive=recursive,
        jobs=jobs,
        engine=engine,
        shards_dir=output.with_name(output.name + ".shards") if engine is not None and output is not None else None,
        device=device,
        max_pixels=max_pixels,
        threshold=threshold,
        captions_from=captions_path,
        evidence=evidence,
    )
    sidecar = meta_path(output) if meta and output is not None else None
    if result.sharded is not None and output is not None and fmt == "parquet":
        # the final table straight from the shard files, atomically, without Python dicts
        _write_sharded_parquet(result, output, sidecar)
        return
    rows_iter: Iterable = result.rows()  # streamed as scored, or from the shard files one shard at a time
    track = progress_bar(progress, "scanning") if result.sharded is None else None
    if track is not None:
        rows_iter = track(rows_iter, len(result.files))
    _stream_scan(rows_iter, result, fmt, output, sidecar)


def _output_format(output: Path | None, fmt: str | None) -> str:
    """The output format from --format or the -o suffix; an unknown suffix is a usage error listing the formats."""
    from gendetect.output import OutputFormatError, output_format

    try:
        return output_format(output, fmt)
    except OutputFormatError as e:
        raise click.UsageError(str(e)) from e


def _stream_scan(rows: Iterator[Any], run: Any, fmt: str, output: Path | None, sidecar: Path | None) -> None:
    """Write each row as it is scored (gendetect.output.RowWriter: temporary file, renamed at the end), then the
    problems (``ScanRun.problems``, already stamped with the model and its rule); then the run's metadata to
    ``sidecar`` when given.

    Ctrl-C stops the scan, and the output is finished with the rows scored so far (a valid file, marked partial
    in Parquet's footer metadata and in the metadata file); stderr says it is partial and the exit code is 130.
    """
    from gendetect.output import RowWriter, write_meta

    problems, total = run.problems, len(run.files)
    counts: Counter[str] = Counter()
    interrupted = False
    writer = RowWriter(output, fmt, metadata=run.metadata() if fmt == "parquet" else None)
    try:
        with writer:
            try:
                for row in rows:
                    d = row.to_dict()
                    writer.write(d)
                    counts[d["verdict"] or "error"] += 1
            except KeyboardInterrupt:
                interrupted = True
                close = getattr(rows, "close", None)
                if close is not None:
                    close()  # stop the workers now
            for p in problems:
                writer.write(p.to_dict())
                counts["error"] += 1
            if interrupted:
                writer.close(complete=False)
    except BaseException:
        if output is not None and writer.rows_written:
            err_console.print(
                f"[bold yellow]the scan failed; {markup_safe(output)} holds the {writer.rows_written} rows written "
                "before (a partial result)[/bold yellow]",
                highlight=False,
            )
        raise
    n = writer.rows_written
    if sidecar is not None and output is not None:
        write_meta(sidecar, run.metadata(counts, complete=not interrupted, output=_described(output, fmt)))
    _print_summary(counts, run, output, sidecar)
    if interrupted:
        where = f"{output} holds" if output is not None else "the output above holds"
        err_console.print(
            f"[bold yellow]interrupted: {n - len(problems)} of {total} files were scored; {where} those rows only "
            "(a partial result)[/bold yellow]",
            highlight=False,
        )
        sys.exit(130)
    if n and counts.get("error", 0) == n:
        sys.exit(1)


def summary_line(counts: Counter[str] | dict[str, int]) -> str:
    """The counts part of the end-of-scan line: every row is either judged (a verdict) or an error.

    Example:
        >>> summary_line({"fake": 2, "uncertain": 3, "real": 5, "error": 2})
        '12 rows: 10 judged (2 fake, 3 uncertain, 5 real), 2 errors'
        >>> summary_line({"real": 1})
        '1 row: 1 judged (0 fake, 0 uncertain, 1 real), 0 errors'
    """
    fake, uncertain, real, errors = (int(counts.get(k, 0)) for k in ("fake", "uncertain", "real", "error"))
    judged = fake + uncertain + real
    rows = judged + errors
    return (
        f"{rows} {'row' if rows == 1 else 'rows'}: {judged} judged ({fake} fake, {uncertain} uncertain, {real} real), "
        f"{errors} {'error' if errors == 1 else 'errors'}"
    )


def _print_summary(counts: Counter[str], run: Any, output: Path | None, sidecar: Path | None = None) -> None:
    """The end-of-scan lines on stderr: verdict counts, what was skipped and why, where the results went."""
    pipeline, thr, skipped = run.pipeline, run.threshold, run.skipped
    err_console.print(
        f"{summary_line(counts)}  [dim](model {pipeline.name}, fake if P(fake) > {thr:.3g}{_band(pipeline, thr)})"
        "[/dim]",
        highlight=False,
    )
    if skipped:
        why = ", ".join(f"{v} {k}" for k, v in skipped.items())
        err_console.print(
            f"not scanned: {why} [dim](name a file on the command line to scan it anyway)[/dim]", highlight=False
        )
    if output is not None:
        err_console.print(f"results written to {markup_safe(output)}", highlight=False)
    if sidecar is not None:
        err_console.print(f"run metadata written to {markup_safe(sidecar)}", highlight=False)


def _described(output: Path, fmt: str) -> dict[str, str]:
    return {"path": str(output), "format": fmt}


def _band(pipeline: Any, threshold: float) -> str:
    u = pipeline.band_start(threshold)
    return f", uncertain if > {u:.3g}" if u is not None else ""


def _write_sharded_parquet(result: Any, output: Path, sidecar: Path | None) -> None:
    """``--engine ... -o X.parquet``: concatenate the shard files into X.parquet (temporary file + rename), then
    print the summary from the verdict column; memory stays flat whatever the number of images (issue 17)."""
    from gendetect.output import json_safe, nested_as_json, remove_older_meta, scan_arrow_types, write_meta
    from gendetect.provenance import provenance

    run, problems = result.sharded, result.problems
    meta = {b"gendetect": json.dumps(json_safe({**provenance(kind="scan"), **result.metadata()})).encode()}
    remove_older_meta(output)
    n = run.write_parquet(
        output,
        extra_rows=[nested_as_json(p.to_dict()) for p in problems],
        metadata=meta,
        types=scan_arrow_types(),
    )
    counts = Counter({k or "error": v for k, v in run.value_counts("verdict").items()})
    counts.update(p.verdict or "error" for p in problems)
    if sidecar is not None:
        write_meta(sidecar, result.metadata(counts, complete=True, output=_described(output, "parquet")))
    _print_summary(counts, result, output, sidecar)
    if n and counts.get("error", 0) == n:
        sys.exit(1)
