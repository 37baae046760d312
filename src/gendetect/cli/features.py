"""``gendetect features``: extract features into the store, and draw feature maps."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import (
    config_options,
    err_console,
    explicit,
    given,
    handle_errors,
    parse_params,
    shard_progress,
)


@main.group()
def features() -> None:
    """Extract and cache features."""


@features.command("extract")
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, path_type=Path),
    help="Folder or manifest (or 'data' in --config).",
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
@config_options("FeaturesRun")
@handle_errors
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
    config_path: Path | None,
    sets: tuple[str, ...],
) -> None:
    """Fill the feature store for every image under --data; a rerun extracts only what is missing.

    With --engine ray the shards run on a Ray cluster (one extractor actor per CPU, or per GPU with -e device=cuda);
    the store must then be on a filesystem every node sees. A --config file may hold an "engine" section
    (engine, address, workers, shard_size).
    """
    from gendetect.data.readers import read_records
    from gendetect.features.store import FeatureStore, default_store_root
    from gendetect.runs import FeaturesRun, Recipe, engine_options, load_run
    from gendetect.scale.features import extract_to_store

    ctx = click.get_current_context()
    options = given(ctx, data="data_path", store="store_dir", layout="layout", jobs="jobs")
    run, engine_section = load_run(FeaturesRun, config_path, sets, options, with_engine=True)
    if explicit(ctx, "preset"):  # a preset's extractor wins over --extractor, as it always did
        run = run.replace(preset=preset, extractor=Recipe.from_preset(preset).extractor)
    elif explicit(ctx, "extractor"):
        run = run.replace(extractor=extractor)
    run = run.replace(extractor={**run.extractor, "params": {**run.extractor["params"], **parse_params(eparams)}})
    if run.data is None:
        raise click.UsageError("Missing option '--data' (or 'data' in --config).")
    engine_fields = {"engine": engine, "address": address, "workers": workers, "shard_size": shard_size}
    opts = engine_options(engine_section, engine_fields, given(ctx, **{k: k for k in engine_fields}))
    ext = run.build_extractor()
    records = read_records(run.data, layout=run.layout, probe=True, hash=True)
    store = FeatureStore(run.store or default_store_root(), ext)
    before = len(store)
    with shard_progress(progress, "feature shards") as on_shard:
        rows = extract_to_store(records, store, ext, opts.replace(progress=on_shard), jobs=run.jobs)
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
@handle_errors
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
        params = parse_params(eparams)
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
