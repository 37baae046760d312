"""``gendetect data``: index, describe and generate labelled image collections."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import (
    config_options,
    err_console,
    explicit,
    given,
    handle_errors,
    shard_progress,
    stdout_console,
)


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
@handle_errors
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
@handle_errors
def data_describe(source: Path, layout: str, as_json: bool) -> None:
    """Counts by label, generator, format and size of a folder or manifest, with confound warnings."""
    from gendetect.cli.render import print_description
    from gendetect.data.manifest import describe
    from gendetect.data.readers import read_records

    summary = describe(read_records(source, layout=layout, probe=True, hash=False))
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_description(summary, stdout_console())


@data.command("generate")
@click.option(
    "--captions",
    type=click.Path(exists=True, path_type=Path),
    help="COCO .json, .tsv, .txt (or 'captions' in --config).",
)
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
@config_options("GenerateRun")
@handle_errors
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
    config_path: Path | None,
    sets: tuple[str, ...],
) -> None:
    """Generate fakes from captions (resumable) into OUTPUT: images plus manifest.parquet, reals included.

    A --config file holds GenerateRun fields (systematic mode's "sampling" among them) and may hold an "engine"
    section (engine, address, workers, shard_size); the options given here override it.
    """
    from gendetect.generation import generate_dataset
    from gendetect.runs import GenerateRun, engine_options, load_run

    ctx = click.get_current_context()
    options = given(
        ctx,
        captions="captions",
        generators="generators",
        per_caption="per_caption",
        models="models_file",
        per_model="per_model",
        real_root="real_root",
        instances="instances",
        captions_per_image="captions_per_image",
        limit="limit",
        seed="seed",
        device="device",
        batch_size="batch_size",
    )
    if explicit(ctx, "match_real"):
        options["format"] = "match-real" if match_real else "lossless"
    run, engine_section = load_run(GenerateRun, config_path, sets, options, with_engine=True)
    if run.captions is None:
        raise click.UsageError("Missing option '--captions' (or 'captions' in --config).")
    engine_fields = {"engine": engine, "address": address, "workers": workers, "shard_size": shard_size}
    opts = engine_options(engine_section, engine_fields, given(ctx, **{k: k for k in engine_fields}))
    with shard_progress(progress, "shards") as on_shard:
        result = generate_dataset(run, output, opts.replace(progress=on_shard))
    c = result.counts
    err_console.print(
        f"{c['reals']} reals, {c['fakes']} fakes, {c['errors']} errors in {result.seconds:.1f}s -> {result.manifest}",
        highlight=False,
    )
    for name, why in result.failed_models.items():
        err_console.print(f"skipped {name}: {why}", highlight=False)
