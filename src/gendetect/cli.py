"""The ``gendetect`` command line: a thin click layer over the library.

Every command calls one library function; :class:`~gendetect.errors.GendetectError` becomes a one-line
``click.ClickException``. Results go to stdout (or ``-o FILE``); progress and summaries go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from gendetect.errors import GendetectError
from gendetect.imageio import DEFAULT_MAX_PIXELS

T = TypeVar("T")
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv", "tsv", "parquet")  # gendetect.output.FORMATS (imported lazily)

err_console = Console(stderr=True, soft_wrap=True)


def _stdout_console() -> Console:
    """Rich console for results: wide enough not to truncate tables when stdout is a file or pipe."""
    return Console() if sys.stdout.isatty() else Console(file=sys.stdout, width=160)


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GendetectError as e:
            raise click.ClickException(str(e)) from e

    return wrapper


def _progress(enabled: bool, description: str) -> Callable[[Iterable[T], int], Iterator[T]] | None:
    """A ``progress(iterable, total)`` wrapper drawing a rich bar on stderr, or None when disabled."""
    if not enabled or not err_console.is_terminal:
        return None

    def track(it: Iterable[T], total: int) -> Iterator[T]:
        from rich.progress import track as rich_track

        yield from rich_track(it, total=total, description=description, console=err_console, transient=True)

    return track


@contextmanager
def _shard_progress(enabled: bool, description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a rich bar of finished shards on stderr (None when disabled)."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=err_console, transient=True) as bar:
        task_id = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task_id, completed=done, total=total)


def _parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``("C=0.1", "k=5", "metric=cosine")`` -> ``{"C": 0.1, "k": 5, "metric": "cosine"}`` (values parsed as JSON)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="gendetect")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
def main(verbose: int) -> None:
    """gendetect: tell real photographs from images made by generative models.

    \b
    gendetect scan photo.jpg                      one image, with the embedded default detector
    gendetect scan ~/Pictures -o results.parquet  a folder, recursively
    gendetect data index DIR -o manifest.parquet  index a labelled tree
    gendetect train --data DIR -o models/mine     train a detector
    gendetect evaluate --model models/mine --data DIR
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# -- scan ------------------------------------------------------------------------------------------------------
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
@_handle_errors
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
) -> None:
    """Score image files and folders: P(fake) and a verdict for each image.

    Every input gets one row; an unreadable, corrupt or oversized file gets an error row and the scan goes on.
    """
    from gendetect.features.extract import tune_allocator
    from gendetect.pipeline import expand_inputs, load_model, scan as scan_files

    tune_allocator()  # glibc: keep per-image temporaries instead of re-faulting them (issue 17); else a no-op
    fmt = _output_format(output, fmt)  # an unknown suffix is refused before any work
    if engine is not None and output is None:
        raise click.UsageError("--engine needs -o OUTPUT (shards are kept in OUTPUT.shards/ for resuming)")
    pipeline = load_model(model, device=device)
    _print_audit_warnings(pipeline.info.get("audit"), "model audit")  # once per scan, on stderr
    skipped: dict[str, int] = {}
    files, problems = expand_inputs(paths, recursive=recursive, skipped=skipped)
    captions = None
    if pipeline.extractor.uses_captions:
        from gendetect.pipeline import find_captions

        captions = find_captions(files, captions_path)
    if engine is not None:
        if output is None:
            raise click.UsageError("--engine needs -o OUTPUT (shards are kept in OUTPUT.shards/ for resuming)")
        from gendetect.scale import run_scan_sharded

        run = run_scan_sharded(
            files,
            pipeline,
            output.with_name(output.name + ".shards"),
            engine=engine,
            shard_size=shard_size,
            jobs=jobs,
            address=address,
            workers=workers,
            max_pixels=max_pixels,
            threshold=threshold,
            device=device,
            captions=captions,
            evidence=evidence,
        )
        if fmt == "parquet":  # the final table straight from the shard files, atomically, without Python dicts
            _write_sharded_parquet(run, problems, pipeline, threshold, output, skipped)
            return
        # other formats: streamed from the shard files one shard at a time (flat memory)
        _stream_scan((_ShardRow(d) for d in run.rows()), problems, fmt, output, pipeline, threshold, skipped, len(run))
    else:
        rows_iter: Iterable = scan_files(
            files, pipeline, jobs=jobs, max_pixels=max_pixels, threshold=threshold, captions=captions, evidence=evidence
        )
        track = _progress(progress, "scanning")
        if track is not None:
            rows_iter = track(rows_iter, len(files))
        _stream_scan(rows_iter, problems, fmt, output, pipeline, threshold, skipped, len(files))


def _output_format(output: Path | None, fmt: str | None) -> str:
    """The output format from --format or the -o suffix; an unknown suffix is a usage error listing the formats."""
    from gendetect.output import OutputFormatError, output_format

    try:
        return output_format(output, fmt)
    except OutputFormatError as e:
        raise click.UsageError(str(e)) from e


def _stream_scan(
    rows: Iterator[Any],
    problems: list[Any],
    fmt: str,
    output: Path | None,
    pipeline: Any,
    threshold: float | None,
    skipped: dict[str, int],
    total: int,
) -> None:
    """Write each row as it is scored (gendetect.output.RowWriter: temporary file, renamed at the end).

    Ctrl-C stops the scan, and the output is finished with the rows scored so far (a valid file, marked partial
    in Parquet's footer metadata); stderr says it is partial and the exit code is 130.
    """
    from gendetect.output import RowWriter

    thr = pipeline.threshold if threshold is None else threshold
    for p in problems:
        p.model, p.threshold = pipeline.name, thr
    counts: Counter[str] = Counter()
    interrupted = False
    writer = RowWriter(output, fmt)
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
                f"[bold yellow]the scan failed; {_markup_safe(output)} holds the {writer.rows_written} rows written "
                "before (a partial result)[/bold yellow]",
                highlight=False,
            )
        raise
    n = writer.rows_written
    _print_summary(counts, n, pipeline, threshold, output, skipped)
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


def _print_summary(
    counts: Counter[str],
    n: int,
    pipeline: Any,
    threshold: float | None,
    output: Path | None,
    skipped: dict[str, int],
) -> None:
    """The end-of-scan lines on stderr: verdict counts, what was skipped and why, where the results went."""
    thr = pipeline.threshold if threshold is None else threshold
    err_console.print(
        f"{n} scanned: {counts.get('fake', 0)} fake, {counts.get('uncertain', 0)} uncertain, "
        f"{counts.get('real', 0)} real, {counts.get('error', 0)} errors  [dim](model {pipeline.name}, fake if "
        f"P(fake) > {thr:.3g}{_band(pipeline, thr)})[/dim]",
        highlight=False,
    )
    if skipped:
        why = ", ".join(f"{v} {k}" for k, v in skipped.items())
        err_console.print(
            f"not scanned: {why} [dim](name a file on the command line to scan it anyway)[/dim]", highlight=False
        )
    if output is not None:
        err_console.print(f"results written to {_markup_safe(output)}", highlight=False)


def _markup_safe(value: Any) -> str:
    """``value`` as text that rich prints literally: markup escaped, undecodable file-name bytes as \\xNN."""
    from rich.markup import escape

    from gendetect.output import json_safe

    return escape(str(json_safe(value)))


class _ShardRow(dict):
    """A row read back from a shard file, for :func:`_stream_scan` (which takes ScanRow-like objects)."""

    def to_dict(self) -> dict[str, Any]:
        return self


def _write_sharded_parquet(
    run: Any, problems: list[Any], pipeline: Any, threshold: float | None, output: Path, skipped: dict[str, int]
) -> None:
    """``--engine ... -o X.parquet``: concatenate the shard files into X.parquet (temporary file + rename), then
    print the summary from the verdict column; memory stays flat whatever the number of images (issue 17)."""
    from gendetect.provenance import provenance

    thr = pipeline.threshold if threshold is None else threshold
    for p in problems:
        p.model, p.threshold = pipeline.name, thr
    meta = {b"gendetect": json.dumps(provenance(kind="scan")).encode()}
    n = run.write_parquet(output, extra_rows=[p.to_dict() for p in problems], metadata=meta)
    counts = Counter({k or "error": v for k, v in run.value_counts("verdict").items()})
    counts.update(p.verdict or "error" for p in problems)
    _print_summary(counts, n, pipeline, threshold, output, skipped)
    if n and counts.get("error", 0) == n:
        sys.exit(1)


def _print_audit_warnings(audit: dict[str, Any] | None, prefix: str) -> None:
    """Every warning of a shortcut audit (file facts and pixel checks), on stderr."""
    from gendetect.evaluation.audit import audit_warnings

    for message in audit_warnings(audit):
        err_console.print(f"[bold red]{prefix}: {message}[/bold red]", highlight=False)


def _band(pipeline: Any, threshold: float) -> str:
    u = pipeline.uncertain_from
    return f", uncertain if > {u:.3g}" if u is not None and u < threshold else ""


def _write_rows(rows: list[dict[str, Any]], fmt: str, output: Path | None) -> None:
    """Write every row at once (the sharded engines' results), atomically; see :mod:`gendetect.output`."""
    from gendetect.output import write_rows

    write_rows(rows, output, fmt)


# -- explain ---------------------------------------------------------------------------------------------------
@main.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option("-m", "--model", default=None, help="Model directory. Default: the embedded one.")
@click.option("--evidence/--no-evidence", default=True, show_default=True, help="Read and fuse the file's evidence.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, help="Refuse larger images (bombs).")
@_handle_errors
def explain(image: Path, output: Path, model: str | None, evidence: bool, max_pixels: int) -> None:
    """Why a verdict: a per-region score map, the residual spectrum and the file's findings, written to a folder.

    Writes score_map.png, spectrum.png, findings.json and explanation.md (open it in any Markdown viewer).
    """
    from gendetect.explain import explain as explain_image

    ex = explain_image(image, model, evidence=evidence, max_pixels=max_pixels)
    for path in ex.write(output):
        click.echo(str(path))
    p = "no score" if ex.p_fake is None else f"P(fake) {ex.p_fake:.3f}"
    err_console.print(f"{image.name}: {ex.verdict} by {ex.verdict_source} ({p}); {ex.rule}", highlight=False)


# -- data ------------------------------------------------------------------------------------------------------
@main.group()
def data() -> None:
    """Index and describe labelled image collections."""


@data.command("index")
@click.argument("root", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Manifest to write (.parquet).")
@click.option(
    "--layout",
    default="auto",
    show_default=True,
    help="auto, labels-csv, cnndetection, real-fake, genimage, manifest or folder.",
)
@click.option("--hash/--no-hash", "do_hash", default=True, show_default=True, help="Record each file's sha256.")
@_handle_errors
def data_index(root: Path, output: Path, layout: str, do_hash: bool) -> None:
    """Write a Parquet manifest with one record per image under ROOT."""
    from gendetect.data.manifest import write_manifest
    from gendetect.data.readers import read_records

    records = read_records(root, layout=layout, probe=True, hash=do_hash)
    write_manifest(records, output, metadata={"root": str(root), "layout": layout})
    errors = sum(r.status != "ok" for r in records)
    err_console.print(f"{len(records)} records ({errors} unreadable) written to {output}", highlight=False)


@data.command("describe")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--layout", default="auto", show_default=True, help="Layout when SOURCE is a folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_handle_errors
def data_describe(source: Path, layout: str, as_json: bool) -> None:
    """Counts by label, generator, format and size of a folder or manifest, with confound warnings."""
    from gendetect.data.manifest import describe, print_description
    from gendetect.data.readers import read_records

    summary = describe(read_records(source, layout=layout, probe=True, hash=False))
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_description(summary, _stdout_console())


@data.command("generate")
@click.option("--captions", required=True, type=click.Path(exists=True, path_type=Path), help="COCO .json, .tsv, .txt.")
@click.option("--generators", default="", help="Comma-separated generators (`gendetect list generators`).")
@click.option("--per-caption", default=1, show_default=True, help="Fakes per caption and generator.")
@click.option(
    "--models-file", type=click.Path(exists=True, path_type=Path), help="Systematic mode: hub ids, one a line."
)
@click.option("--per-model", default=4, show_default=True, help="Systematic mode: fakes per model.")
@click.option("--real-root", type=click.Path(exists=True, path_type=Path), help="Folder of the real images.")
@click.option("--instances", type=click.Path(exists=True, path_type=Path), help="COCO instances JSON (subjects).")
@click.option("--captions-per-image", type=int, default=None, help="Use at most N captions per real image.")
@click.option(
    "--match-real-format/--lossless",
    "match_real",
    default=None,
    help="Fakes take their paired real's format, JPEG quality and size / save both classes as PNG. "
    "Default: match when the captions pair with reals, else lossless.",
)
@click.option("--limit", type=int, default=None, help="Use only the first N captions.")
@click.option("--seed", default=0, show_default=True, help="Base seed (per-image seeds derive from it).")
@click.option("--device", default=None, help="Torch device for the pipelines (cpu, cuda).")
@click.option("--batch-size", default=1, show_default=True, help="Prompts per pipeline call.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster address (auto, ray://host:10001).")
@click.option("--workers", type=int, default=None, help="Ray actors (default: one per CPU, or per GPU on cuda).")
@click.option("--shard-size", default=64, show_default=True, help="Images per shard (the unit of work and resume).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--progress/--no-progress", default=True)
@_handle_errors
def data_generate(
    captions: Path,
    generators: str,
    per_caption: int,
    models_file: Path | None,
    per_model: int,
    real_root: Path | None,
    instances: Path | None,
    captions_per_image: int | None,
    match_real: bool | None,
    limit: int | None,
    seed: int,
    device: str | None,
    batch_size: int,
    engine: str,
    address: str | None,
    workers: int | None,
    shard_size: int,
    output: Path,
    progress: bool,
) -> None:
    """Generate fakes from captions (resumable) into OUTPUT: images plus manifest.parquet, reals included."""
    from gendetect.generation import generate_dataset

    with _shard_progress(progress, "shards") as on_shard:
        result = generate_dataset(
            captions,
            output,
            generators=generators,
            per_caption=per_caption,
            models=models_file,
            per_model=per_model,
            real_root=real_root,
            instances=instances,
            captions_per_image=captions_per_image,
            format="auto" if match_real is None else "match-real" if match_real else "lossless",
            limit=limit,
            seed=seed,
            device=device,
            batch_size=batch_size,
            engine=engine,
            address=address,
            workers=workers,
            shard_size=shard_size,
            progress=on_shard,
        )
    c = result.counts
    err_console.print(
        f"{c['reals']} reals, {c['fakes']} fakes, {c['errors']} errors in {result.seconds:.1f}s -> {result.manifest}",
        highlight=False,
    )
    for name, why in result.failed_models.items():
        err_console.print(f"skipped {name}: {why}", highlight=False)


# -- train / evaluate ------------------------------------------------------------------------------------------
def _load_records(source: Path, layout: str, split: str | None, exclude_test: bool) -> list:
    from gendetect.data.readers import read_records

    records = read_records(source, layout=layout, probe=True, hash=True)
    if split:
        wanted = {s.strip().lower() for s in split.split(",")}
        records = [r for r in records if (r.split or "").lower() in wanted]
    if exclude_test:
        n = sum((r.split or "").lower() == "test" for r in records)
        if n:
            err_console.print(f"excluding {n} records with split 'test' (test data never trains a model)")
            records = [r for r in records if (r.split or "").lower() != "test"]
    if not records:
        raise click.ClickException(f"no images found in {source}" + (f" with split {split!r}" if split else ""))
    return records


@main.command()
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Labelled folder or manifest (.parquet/.csv/.jsonl).",
)
@click.option("--preset", default=None, help="A named recipe: univfd, univfd-knn, coccomini, forensic, dnf.")
@click.option("--extractor", default=None, help="Feature extractor (`gendetect list extractors`); default spectrum.")
@click.option("--detector", default=None, help="Detector (`gendetect list detectors`); default logistic.")
@click.option("-p", "--param", "params", multiple=True, help="Detector hyper-parameter KEY=VALUE (repeatable).")
@click.option("-e", "--extractor-param", "eparams", multiple=True, help="Extractor parameter KEY=VALUE (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Model directory to write.")
@click.option(
    "--target-fpr", default=0.01, show_default=True, help="Threshold keeps validation FPR on reals below this."
)
@click.option(
    "--uncertain-fpr",
    default=0.05,
    show_default=True,
    help="Scores between the threshold for this FPR and the main threshold are 'uncertain' (0 = no band).",
)
@click.option(
    "--calibration",
    type=click.Choice(["none", "temperature", "isotonic"]),
    default="none",
    show_default=True,
    help="Calibrate P(fake) on out-of-fold scores before choosing the threshold.",
)
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds for threshold and validation.")
@click.option("--split", default=None, help="Use only these splits (comma-separated), e.g. train,trainval.")
@click.option("--layout", default="auto", show_default=True, help="Layout when --data is a folder.")
@click.option("--name", default=None, help="Model name recorded in its config.")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Feature store folder: reuse cached features, cache new ones (see `gendetect features extract`).",
)
@click.option("-j", "--jobs", default=1, show_default=True, help="Worker processes (0 = all cores).")
@click.option("--progress/--no-progress", default=True)
@_handle_errors
def train(
    data_path: Path,
    preset: str | None,
    extractor: str | None,
    detector: str | None,
    params: tuple[str, ...],
    eparams: tuple[str, ...],
    output: Path,
    target_fpr: float,
    uncertain_fpr: float,
    calibration: str,
    folds: int,
    split: str | None,
    layout: str,
    name: str | None,
    store_dir: Path | None,
    jobs: int,
    progress: bool,
) -> None:
    """Train a detector on a labelled folder or manifest and save it as a model directory."""
    from gendetect.detectors import create_detector
    from gendetect.features import create_extractor
    from gendetect.training import train_pipeline

    recipe = {"extractor": {"name": "spectrum", "params": {}}, "detector": {"name": "logistic", "params": {}}}
    if preset:
        from gendetect.presets import get_preset

        recipe = get_preset(preset)
    for kind, chosen, extra in (("extractor", extractor, eparams), ("detector", detector, params)):
        if chosen:
            recipe[kind] = {"name": chosen, "params": {}}
        recipe[kind]["params"].update(_parse_params(extra))
    for kind, flag in (("extractor", "-e"), ("detector", "-p")):  # before any work, not after feature extraction
        _check_params(kind, recipe[kind]["name"], recipe[kind]["params"], flag)
    ext = create_extractor(recipe["extractor"]["name"], **recipe["extractor"]["params"])
    det = create_detector(recipe["detector"]["name"], **recipe["detector"]["params"])
    records = _load_records(data_path, layout, split, exclude_test=True)
    pipeline = train_pipeline(
        records,
        ext,
        det,
        target_fpr=target_fpr,
        uncertain_fpr=uncertain_fpr or None,
        n_folds=folds,
        jobs=jobs,
        name=name or preset,
        data=str(data_path),
        calibration=None if calibration == "none" else calibration,
        store=_open_store(store_dir, ext),
        progress=_progress(progress, "features"),
    )
    _print_audit_warnings(pipeline.info.get("audit"), "training audit")
    pipeline.save(output)
    v = pipeline.info["validation"]["all"]
    err_console.print(
        f"saved {output}: threshold {pipeline.threshold:.4f} (validation FPR <= {target_fpr:g}); "
        f"validation AUC {v['auc']:.3f}, acc real {v['acc_real']:.3f}, acc fake {v['acc_fake']:.3f}",
        highlight=False,
    )


@main.command()
@click.option("-m", "--model", default=None, help="Model directory. Default: the embedded one.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, path_type=Path),
    help="Labelled folder or manifest (or 'data' in --config).",
)
@click.option(
    "--protocol",
    default=None,
    help="per-generator (default), per-subject, robustness, cross-generator, logo, generator-count, audit, captions, "
    "feature-comparison, disentangle.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Protocol config JSON (ProtocolConfig fields); options given here override it.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="FILE.json: the JSON report; any other path: a folder with report.json, report.md, report.html.",
)
@click.option("--split", default=None, help="Use only these splits (comma-separated), e.g. test.")
@click.option("--exclude-split", default=None, help="Drop these splits (comma-separated), e.g. test.")
@click.option("--layout", default=None, help="Layout when --data is a folder (default auto).")
@click.option("--extractor", default=None, help="Training protocols: extractor name (default: the model's).")
@click.option("--detector", default=None, help="Training protocols: detector name (default: the model's).")
@click.option("-p", "--param", "params", multiple=True, help="Detector hyper-parameter KEY=VALUE.")
@click.option("-e", "--extractor-param", "eparams", multiple=True, help="Extractor parameter KEY=VALUE.")
@click.option("--chain", "chains", multiple=True, help="Robustness: a delivery chain, e.g. resize:0.5+jpeg:75.")
@click.option(
    "--compare",
    "compare",
    multiple=True,
    help="feature-comparison: an extractor, as NAME or 'NAME {json params}' (repeatable).",
)
@click.option("--bootstrap", "n_boot", type=int, default=None, help="Bootstrap replicates for CIs (default 1000).")
@click.option("--store", "store_dir", type=click.Path(path_type=Path), default=None, help="Feature store folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report to stdout instead of the tables.")
@click.option("-j", "--jobs", default=None, type=int, help="Worker processes (0 = all cores).")
@click.option(
    "--compare-models",
    "compare_models_",
    default=None,
    help="Comma-separated models (default, published names such as univfd or npr, directories): per-generator "
    "AUC/AP and FPR on reals side by side; a model that cannot load is reported, not fatal.",
)
@_handle_errors
def evaluate(
    model: str | None,
    data_path: Path | None,
    protocol: str | None,
    config_path: Path | None,
    output: Path | None,
    split: str | None,
    exclude_split: str | None,
    layout: str | None,
    extractor: str | None,
    detector: str | None,
    params: tuple[str, ...],
    eparams: tuple[str, ...],
    chains: tuple[str, ...],
    compare: tuple[str, ...],
    n_boot: int | None,
    store_dir: Path | None,
    as_json: bool,
    jobs: int | None,
    compare_models_: str | None,
) -> None:
    """Evaluate with a protocol: tables on stdout, and a JSON / Markdown / HTML report with -o.

    \b
    per-generator    metrics per generator and overall: accuracy on real and fake, AP, AUC, EER, TPR@1%/0.1% FPR
    per-subject      the same per subject/category
    captions         the same detector with and without the caption text embedding (openclip with_text)
    feature-comparison  linear and kNN probes on each --compare extractor, per generator, with/without text
    disentangle      COCOFake semantic/residual split: where the detection signal lies (openclip)
    robustness       the model under JPEG, WebP, resize, blur, crop and chains of them
    cross-generator  train on each generator set, test on every other (uses --extractor/--detector or the model's)
    logo             leave one generator out
    generator-count  AUC on unseen generators against the number of training generators
    audit            can file facts, a frame, a caption strip or the content (art vs photo) separate real from fake?
    """
    from gendetect.evaluation.protocols import ProtocolConfig, run_protocol
    from gendetect.evaluation.render import write_report
    from gendetect.evaluation.report import _finite, save_report

    base = json.loads(config_path.read_text()) if config_path else {}
    overrides = {
        "protocol": protocol,
        "data": str(data_path) if data_path else None,
        "model": model,
        "split": split,
        "exclude_split": exclude_split,
        "layout": layout,
        "n_boot": n_boot,
        "jobs": jobs,
        "store": str(store_dir) if store_dir else None,
        "chains": list(chains) or None,
        "extractors": [_extractor_spec(c) for c in compare] or None,
    }
    if extractor:
        overrides["extractor"] = {"name": extractor, "params": _parse_params(eparams)}
        _check_params("extractor", extractor, overrides["extractor"]["params"], "-e")
    if detector:
        overrides["detector"] = {"name": detector, "params": _parse_params(params)}
        _check_params("detector", detector, overrides["detector"]["params"], "-p")
    if chains:
        from gendetect.evaluation.perturbations import parse_chain

        for c in chains:  # an unknown step or an argument out of range fails now, not after the features
            parse_chain(c)
    _report_kind(output)
    if compare_models_:
        from gendetect.evaluation.compare import compare_models

        if data_path is None:
            raise click.UsageError("--compare-models needs --data")
        names = [m.strip() for m in compare_models_.split(",") if m.strip()]
        report = compare_models(
            names,
            data_path,
            layout=layout or "auto",
            split=split,
            exclude_split=exclude_split,
            n_boot=0 if n_boot is None else n_boot,
            jobs=jobs or 1,
            store=str(store_dir) if store_dir else None,
        )
    else:
        config = ProtocolConfig.from_dict({**base, **{k: v for k, v in overrides.items() if v is not None}})
        report = run_protocol(config)
    _print_audit_warnings(report.get("audit"), "data audit")
    if output is not None:
        kind = _report_kind(output)
        if kind == "json":
            save_report(report, output)
        elif kind in ("html", "md"):
            from gendetect.atomic import atomic_write
            from gendetect.evaluation.render import to_html, to_markdown

            output.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(output, to_html(report) if kind == "html" else to_markdown(report))
        else:
            paths = write_report(report, output)
            output = paths["html"]
        err_console.print(f"report written to {_markup_safe(output)}", highlight=False)
    if as_json:
        click.echo(json.dumps(_finite(report), indent=2))
        return
    console = _stdout_console()
    for t in report["tables"]:
        table = Table(title=t["title"], show_edge=False)
        for i, col in enumerate(t["columns"]):
            table.add_column(str(col), justify="left" if i == 0 else "right")
        for row in t["rows"]:
            table.add_row(*[_cell(v) for v in row])
        console.print(table)
        if t.get("note"):
            console.print(t["note"], style="dim", highlight=False)
    n_err = report["data"]["n_unreadable"]
    if n_err:
        err_console.print(f"{n_err} images could not be read; see 'items' in the JSON report", highlight=False)


def _report_kind(output: Path | None) -> str | None:
    """``evaluate -o``: "json", "html" or "md" for a file of that suffix, "folder" for a path without a suffix (a
    folder with report.json, report.md and report.html); any other suffix is refused before the work starts."""
    if output is None:
        return None
    suffix = output.suffix.lower()
    kinds = {".json": "json", ".html": "html", ".htm": "html", ".md": "md"}
    if suffix in kinds:
        return kinds[suffix]
    if not suffix or output.is_dir():
        return "folder"
    raise click.UsageError(
        f"-o {output}: cannot write a report as {suffix!r}; use FILE.json, FILE.html or FILE.md, or a folder name "
        "without a suffix (report.json, report.md and report.html inside)"
    )


def _check_params(kind: str, name: str, params: dict[str, Any], flag: str) -> None:
    """Refuse, before any work, a hyper-parameter the component does not take (listing those it does) or a value
    of the wrong type for its default (``C=abc`` where ``C`` defaults to a number)."""
    import inspect

    if not params:
        return
    if kind == "detector":
        from gendetect.detectors import DETECTORS as registry
    else:
        from gendetect.features import EXTRACTORS as registry
    cls = registry.get(name)  # an unknown name lists the valid ones
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return
    accepted = {
        n: p for n, p in sig.parameters.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    open_ended = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for key, value in params.items():
        if key not in accepted:
            if open_ended:
                continue
            raise click.BadParameter(
                f"{kind} {name!r} has no parameter {key!r}; valid: {', '.join(sorted(accepted)) or '(none)'}",
                param_hint=flag,
            )
        default = accepted[key].default
        if default is inspect.Parameter.empty or default is None or value is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int | float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and (isinstance(default, float) or isinstance(value, int))
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            raise click.BadParameter(
                f"{kind} {name!r}: {key}={value!r} is not a {type(default).__name__} (default {key}={default!r})",
                param_hint=flag,
            )


def _extractor_spec(text: str) -> dict[str, Any]:
    name, _, params = text.strip().partition(" ")
    try:
        return {"name": name, "params": json.loads(params) if params.strip() else {}}
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"{text!r}: parameters must be a JSON object ({e})") from e


def _cell(v: Any) -> str:
    import math

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


# -- serve ----------------------------------------------------------------------------------------------------
@main.command()
@click.option("-m", "--model", default=None, help="Model directory. Default: the embedded one.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", default=8000, show_default=True)
@click.option(
    "--token",
    envvar="GENDETECT_TOKEN",
    default=None,
    help="Require 'Authorization: Bearer TOKEN' on the API (env GENDETECT_TOKEN).",
)
@click.option(
    "--db",
    "db_url",
    default=None,
    help="Result store URL (default SQLite in the cache dir; postgresql+psycopg://... for teams).",
)
@click.option(
    "--allow-root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder that background jobs may read; jobs are disabled without it.",
)
@click.option("--max-upload-mb", default=25, show_default=True, help="Per-file upload limit.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, help="Per-image pixel limit.")
@click.option("--max-batch", default=32, show_default=True, help="Files per /v1/detect request.")
@click.option("--max-request-mb", default=100, show_default=True, help="Per /v1/detect request, all files.")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Host name the server may be reached as without a token, besides localhost and --host (repeatable).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Origin (https://app.example) whose pages may POST to the API; '*' for any (repeatable).",
)
@click.option("--job-workers", default=1, show_default=True, help="Threads running background jobs.")
@click.option("--max-jobs", default=16, show_default=True, help="Jobs queued or running at once; more get 429.")
@click.option("--job-retention-days", default=7.0, show_default=True, help="Finished jobs are deleted after this.")
@_handle_errors
def serve(
    model: str | None,
    host: str,
    port: int,
    token: str | None,
    db_url: str | None,
    allow_root: Path | None,
    max_upload_mb: int,
    max_pixels: int,
    max_batch: int,
    max_request_mb: int,
    allowed_hosts: tuple[str, ...],
    cors_origins: tuple[str, ...],
    job_workers: int,
    max_jobs: int,
    job_retention_days: float,
) -> None:
    """Run the HTTP API and web page (needs the 'serve' extra). Open http://HOST:PORT/ in a browser."""
    try:
        import uvicorn

        from gendetect.server.app import ServerSettings, create_app
        from gendetect.server.security import is_loopback
    except ImportError as e:
        raise click.ClickException(f"{e}. Install the extra: pip install 'gendetect[serve]'") from e
    settings = ServerSettings(
        token=token,
        db_url=db_url,
        allow_root=allow_root,
        max_upload_bytes=max_upload_mb * 2**20,
        max_request_bytes=max_request_mb * 2**20,
        max_pixels=max_pixels,
        max_batch=max_batch,
        bind_host=host,
        allowed_hosts=allowed_hosts,
        cors_origins=cors_origins,
        job_workers=job_workers,
        max_active_jobs=max_jobs,
        job_retention_s=job_retention_days * 86400,
    )
    app = create_app(model, settings)
    err_console.print(
        f"gendetect serving {app.state.pipeline.name} on http://{host}:{port}/ "
        f"(API docs at /docs{', token required' if token else ''})",
        highlight=False,
    )
    if token is None and not is_loopback(host):
        err_console.print(
            f"[bold red]WARNING: serving on {host} without a token: anyone who can reach it can upload images and "
            "start jobs.[/] Set --token (or GENDETECT_TOKEN). Without a token only the Host names localhost, "
            f"127.0.0.1, [::1]{'' if host in ('0.0.0.0', '::') else ', ' + host} and --allowed-host are answered.",
            highlight=False,
        )
    uvicorn.run(app, host=host, port=port, log_level="info")


# -- features -------------------------------------------------------------------------------------------------
def _open_store(store_dir: Path | None, extractor: Any) -> Any:
    if store_dir is None:
        return None
    from gendetect.features.store import FeatureStore

    return FeatureStore(store_dir, extractor)


@main.group()
def features() -> None:
    """Extract and cache features."""


@features.command("extract")
@click.option(
    "--data", "data_path", required=True, type=click.Path(exists=True, path_type=Path), help="Folder or manifest."
)
@click.option("--extractor", default="forensic", show_default=True, help="Feature extractor.")
@click.option("-e", "--extractor-param", "eparams", multiple=True, help="Extractor parameter KEY=VALUE.")
@click.option("--preset", default=None, help="Take the extractor of a preset (univfd, coccomini...).")
@click.option(
    "--store",
    "store_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Store folder (default $GENDETECT_CACHE/features or ~/.cache/gendetect/features).",
)
@click.option("--shard-size", default=512, show_default=True, help="Images per shard (the unit of resumption).")
@click.option("--layout", default="auto", show_default=True)
@click.option("-j", "--jobs", default=1, show_default=True, help="Worker processes per shard (0 = all cores).")
@click.option(
    "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="Where shards run."
)
@click.option("--address", default=None, help="Ray cluster address (auto, ray://host:10001); default: start locally.")
@click.option("--workers", type=int, default=None, help="Ray actors (default: one per CPU, or per GPU on cuda).")
@click.option("--progress/--no-progress", default=True)
@_handle_errors
def features_extract(
    data_path: Path,
    extractor: str,
    eparams: tuple[str, ...],
    preset: str | None,
    store_dir: Path | None,
    shard_size: int,
    layout: str,
    jobs: int,
    engine: str,
    address: str | None,
    workers: int | None,
    progress: bool,
) -> None:
    """Fill the feature store for every image under --data; a rerun extracts only what is missing.

    With --engine ray the shards run on a Ray cluster (one extractor actor per CPU, or per GPU with -e device=cuda);
    the store must then be on a filesystem every node sees.
    """
    from gendetect.data.readers import read_records
    from gendetect.features import create_extractor
    from gendetect.features.store import FeatureStore, default_store_root
    from gendetect.scale.features import extract_to_store

    spec = {"name": extractor, "params": {}}
    if preset:
        from gendetect.presets import get_preset

        spec = get_preset(preset)["extractor"]
    spec["params"].update(_parse_params(eparams))
    ext = create_extractor(spec["name"], **spec["params"])
    records = read_records(data_path, layout=layout, probe=True, hash=True)
    store = FeatureStore(store_dir or default_store_root(), ext)
    before = len(store)
    with _shard_progress(progress, "feature shards") as on_shard:
        rows = extract_to_store(
            records,
            store,
            ext,
            engine=engine,
            shard_size=shard_size,
            jobs=jobs,
            address=address,
            workers=workers,
            progress=on_shard,
        )
    failed = [r for r in rows if r["status"] != "ok"]
    err_console.print(
        f"{store.dir}: {len(store)} images stored ({len(store) - before} new); "
        f"{len(rows) - len(failed)} of {len(records)} readable, {len(failed)} errors",
        highlight=False,
    )
    for r in failed[:5]:
        err_console.print(f"  {r['path']}: {r['error']}", highlight=False)


@features.command("show")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--extractor", default="dnf", show_default=True, help="An extractor that makes maps (dnf, rgb).")
@click.option("-e", "--extractor-param", "eparams", multiple=True, help="Extractor parameter KEY=VALUE.")
@click.option("-m", "--model", default=None, help="Use the extractor of this model directory instead.")
@click.option("--device", default=None, help="Run a torch extractor on this device (cpu, cuda).")
@_handle_errors
def features_show(
    paths: tuple[Path, ...], extractor: str, eparams: tuple[str, ...], model: str | None, device: str | None
) -> None:
    """Write a PNG of each image's feature map next to it (IMG -> IMG.dnf.png), channels min-max normalised.

    \b
    gendetect features show photo.jpg -e model=google/ddpm-bedroom-256
    gendetect features show photos/ --model models/dnf
    """
    from gendetect.features import create_extractor
    from gendetect.features.dnf import save_map_images
    from gendetect.pipeline import expand_inputs, load_model

    if model:
        ext = load_model(model, device=device).extractor
    else:
        params = _parse_params(eparams)
        if device:
            params["device"] = device
        ext = create_extractor(extractor, **params)
    if getattr(ext, "map_shape", None) is None:
        raise click.UsageError(
            f"extractor {ext.name!r} makes feature vectors, not maps: nothing to show (try dnf, rgb)"
        )
    suffix = f".{ext.name}.png"
    files, problems = expand_inputs(paths)
    files = [f for f in files if not f.endswith(suffix)]  # never the maps of maps
    for p in problems:
        err_console.print(f"{p.path}: {p.error}", highlight=False)
    failed = len(problems)
    for src, png, error in save_map_images(files, ext, suffix=suffix):
        if error:
            failed += 1
            err_console.print(f"{src}: {error}", highlight=False)
        else:
            click.echo(str(png))
    if failed and failed == len(files) + len(problems):
        sys.exit(1)


# -- import ---------------------------------------------------------------------------------------------------
@main.group("import")
def import_group() -> None:
    """Convert released detectors into gendetect models."""


@import_group.command("univfd")
@click.argument("fc_weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Model directory to write.")
@click.option("--clip-model", default="ViT-L-14", show_default=True, help="open_clip architecture of the backbone.")
@click.option("--pretrained", default="openai", show_default=True, help="Backbone weights (tag, hf-hub id or file).")
@_handle_errors
def import_univfd(fc_weights: Path, output: Path, clip_model: str, pretrained: str) -> None:
    """Convert UnivFD's released linear head (fc_weights.pth) into a gendetect model (needs the 'clip' extra)."""
    from gendetect.presets import import_univfd_head

    path = import_univfd_head(fc_weights, output, clip_model=clip_model, pretrained=pretrained)
    err_console.print(
        f"UnivFD head written to {path}; scanning with it needs CLIP {clip_model}/{pretrained} weights "
        "(fetched once through the weights resolver)",
        highlight=False,
    )


# -- models: the zoo of published detectors ------------------------------------------------------------------------
@main.group()
def models() -> None:
    """Published detectors by name (UnivFD, NPR, CNNDetection, Community Forensics...): list, show, pull, export.

    \b
    gendetect models list                 the zoo, with what is already in the cache
    gendetect models show npr             the card: paper, files, preprocessing, what was verified and what not
    gendetect models pull npr             fetch its files once (sha256-checked), for offline use afterwards
    gendetect scan --model npr photo.jpg  scan with it
    """


@models.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@_handle_errors
def models_list(pattern: str, as_json: bool) -> None:
    """List the published detectors (optionally matching a wildcard PATTERN) and whether their files are cached."""
    from gendetect.zoo import get_entry, list_entries

    rows = []
    for name in list_entries(pattern):
        e = get_entry(name)
        status = e.status()
        cached = "yes" if all(status.values()) else ("partly" if any(status.values()) else "no")
        rows.append({"name": name, "paper": f"{e.authors}, {e.venue} {e.year}", "licence": e.licence, "cached": cached})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(show_edge=False, header_style="bold")
    for col in ("name", "paper", "licence", "cached"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["paper"], r["licence"].split(" (")[0].split(":")[0], r["cached"])
    _stdout_console().print(table)


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@_handle_errors
def models_show(name: str, as_json: bool) -> None:
    """The card of a published detector: paper, licence, files, preprocessing, reported results, verification."""
    import dataclasses

    from gendetect.zoo import get_entry

    e = get_entry(name)
    status = e.status()
    if as_json:
        d = {k: v for k, v in dataclasses.asdict(e).items() if k != "make_config"}
        d["cached"] = status
        click.echo(json.dumps(d, indent=2, default=str))
        return
    click.echo(e.card(), nl=False)
    for role, ok in status.items():
        click.echo(f"- cached {role}: {'yes' if ok else 'no (gendetect models pull ' + name + ')'}")


@models.command("pull")
@click.argument("names", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Pull every entry.")
@_handle_errors
def models_pull(names: tuple[str, ...], pull_all: bool) -> None:
    """Download the files of published detectors into the cache ($GENDETECT_CACHE), checking sha256 where known."""
    from gendetect.zoo import list_entries, pull

    chosen = list_entries() if pull_all else list(names)
    if not chosen:
        raise click.UsageError("name one or more detectors (gendetect models list), or pass --all")
    for name in chosen:
        for role, path in pull(name).items():
            err_console.print(f"{name} {role}: {path}", highlight=False)


@models.command("export")
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Model directory to write.")
@click.option("--file", "files", multiple=True, help="ROLE=PATH: use this file (e.g. checkpoint=NPR.pth).")
@_handle_errors
def models_export(name: str, output: Path, files: tuple[str, ...]) -> None:
    """Convert a published detector's official files into a model directory (`gendetect scan --model DIR`)."""
    from gendetect.zoo import export_model

    paths = {}
    for pair in files:
        role, sep, path = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected ROLE=PATH, got {pair!r}", param_hint="--file")
        paths[role] = path
    out = export_model(name, output, paths=paths)
    err_console.print(f"{name} written to {out}", highlight=False)


# -- list / model ----------------------------------------------------------------------------------------------
@main.command("list")
@click.argument("kind", type=click.Choice(["extractors", "detectors", "generators"]))
@click.argument("pattern", default="*")
def list_cmd(kind: str, pattern: str) -> None:
    """List registered extractors, detectors or generators (optionally matching a wildcard PATTERN)."""
    from gendetect.detectors import list_detectors
    from gendetect.features import list_extractors

    if kind == "generators":
        from gendetect.generation import get_generator, list_generators

        for name in list_generators(pattern):
            spec = get_generator(name)
            click.echo(f"{name:18} {spec.repo or spec.backend:48} {spec.notes}".rstrip())
        return
    for name in (list_extractors if kind == "extractors" else list_detectors)(pattern):
        click.echo(name)


@main.command("model")
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the full config as JSON.")
@_handle_errors
def model_cmd(model: str | None, as_json: bool) -> None:
    """Show a model's extractor, detector, threshold, training data and validation metrics (default model if none)."""
    from gendetect.pipeline import load_model

    from gendetect.evaluation.audit import audit_warnings

    pipeline = load_model(model)
    config = pipeline.get_config()
    if as_json:
        config["audit_warnings"] = audit_warnings(config.get("audit"))
        click.echo(json.dumps(config, indent=2, default=str))
        return
    console = _stdout_console()
    console.print(f"[bold]{pipeline.name}[/bold]  ({pipeline.info.get('path')})", highlight=False)
    console.print(f"extractor: {pipeline.extractor!r}", highlight=False)
    console.print(f"detector:  {pipeline.detector.get_config()}", highlight=False)
    rule = config.get("threshold_rule", {})
    console.print(
        f"threshold: {pipeline.threshold:.4f}  ({rule.get('rule', 'n/a')}; {rule.get('scheme', '')})", highlight=False
    )
    if pipeline.uncertain_from is not None:
        console.print(
            f"uncertain: {pipeline.uncertain_from:.4f} < P(fake) <= {pipeline.threshold:.4f} "
            f"(the threshold for {rule.get('uncertain_fpr')} validation FPR)",
            highlight=False,
        )
    training = config.get("training", {})
    console.print(f"trained on: {training.get('n_images')} images, {training.get('labels')}", highlight=False)
    cal = config.get("calibration")
    console.print(
        f"P(fake):   calibrated probability ({cal.get('name', cal)})"
        if cal
        else "P(fake):   an uncalibrated score (higher = more likely generated), not a probability",
        highlight=False,
    )
    for key, title in (("validation", f"validation ({rule.get('scheme', 'out-of-fold')})"), ("test", "test")):
        if isinstance(config.get(key), dict) and config[key]:
            _print_metric_tables(console, title, config[key])
    audit = config.get("audit")
    if not audit:
        console.print("audit: none recorded (trained with the shortcut audit off)", highlight=False)
        return
    checks = [("file facts", audit)] + [(c, audit[c]) for c in ("border", "text_strip", "content") if c in audit]
    aucs = ", ".join(f"{name} {c['auc']:.2f}" for name, c in checks if isinstance(c.get("auc"), float))
    console.print(f"audit (AUC of each shortcut check; chance 0.50): {aucs or 'n/a'}", highlight=False)
    for message in audit_warnings(audit):
        console.print(f"[bold red]audit warning:[/bold red] {message}", highlight=False)


_METRIC_COLUMNS = (
    ("n_real", "reals"),
    ("n_fake", "fakes"),
    ("auc", "AUC"),
    ("ap", "AP"),
    ("acc_real", "acc real"),
    ("acc_fake", "TPR@thr"),
    ("tpr_at_1fpr", "TPR@1%FPR"),
    ("ece", "ECE"),
)


def _print_metric_tables(console: Console, title: str, metrics: dict[str, Any]) -> None:
    """Rows of ``{group: binary_metrics}`` as a table; nested ``{name: {group: metrics}}`` as further tables."""
    rows = {k: v for k, v in metrics.items() if isinstance(v, dict) and any(c in v for c, _ in _METRIC_COLUMNS)}
    if rows:
        cols = [(c, h) for c, h in _METRIC_COLUMNS if any(c in v for v in rows.values())]
        table = Table(title=title, title_justify="left", show_edge=False)
        table.add_column("group")
        for _, h in cols:
            table.add_column(h, justify="right")
        for name in sorted(rows, key=lambda k: (k != "all", k)):
            table.add_row(name, *[_cell(rows[name].get(c)) for c, _ in cols])
        console.print(table)
    for k, v in metrics.items():
        if k not in rows and isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            _print_metric_tables(console, f"{title}: {k}", v)


if __name__ == "__main__":  # pragma: no cover
    main()
