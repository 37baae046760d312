"""``gendetect train``: train a detector on a labelled folder or manifest and save a model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gendetect.cli import main
from gendetect.cli._common import (
    check_params,
    config_options,
    err_console,
    explicit,
    given,
    handle_errors,
    parse_params,
    print_audit_warnings,
    progress_bar,
)


@main.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, path_type=Path),
    help="Labelled folder or manifest (.parquet/.csv/.jsonl); or 'data' in --config.",
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
@click.option(
    "--conformal/--in-sample",
    default=True,
    show_default=True,
    help="Thresholds at the split-conformal quantile of the validation reals (the FPR target holds on new reals), "
    "or the in-sample quantile (at most the target on the validation reals themselves).",
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
@config_options("TrainRun")
@handle_errors
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
    conformal: bool,
    calibration: str,
    folds: int,
    split: str | None,
    layout: str,
    name: str | None,
    store_dir: Path | None,
    jobs: int,
    progress: bool,
    config_path: Path | None,
    sets: tuple[str, ...],
) -> None:
    """Train a detector on a labelled folder or manifest and save it as a model directory.

    The recipe is the default one (spectrum + logistic), a --preset's, or --config's, with --extractor/--detector
    and -e/-p on top. Precedence: defaults < --config file < --set < the options given here.
    """
    from gendetect.runs import Recipe, TrainRun, load_run, train as train_run

    ctx = click.get_current_context()
    options = given(
        ctx,
        data="data_path",
        target_fpr="target_fpr",
        uncertain_fpr="uncertain_fpr",
        conformal="conformal",
        folds="folds",
        split="split",
        layout="layout",
        name="name",
        store="store_dir",
        jobs="jobs",
    )
    run, _ = load_run(TrainRun, config_path, sets, options)
    if explicit(ctx, "preset"):
        run = run.replace(preset=preset, recipe=Recipe.from_preset(preset))
    recipe = run.recipe.override(
        extractor=extractor,
        extractor_params=parse_params(eparams),
        detector=detector,
        detector_params=parse_params(params),
        calibration=calibration if explicit(ctx, "calibration") else None,
    )
    run = run.replace(recipe=recipe)
    if run.data is None:
        raise click.UsageError("Missing option '--data' (or 'data' in --config).")
    for kind, flag in (("extractor", "-e"), ("detector", "-p")):  # before any work, not after feature extraction
        spec = getattr(recipe, kind)
        check_params(kind, spec["name"], spec["params"], flag)
    components = recipe.build()  # a recipe that cannot be built fails before the data is read
    pipeline = train_run(run, _records(run), components=components, progress=progress_bar(progress, "features"))
    print_audit_warnings(pipeline.info.get("audit"), "training audit")
    pipeline.save(output)
    v = pipeline.info["validation"]["all"]
    err_console.print(
        f"saved {output}: threshold {pipeline.threshold:.4f} (validation FPR <= {run.target_fpr:g}); "
        f"validation AUC {v['auc']:.3f}, acc real {v['acc_real']:.3f}, acc fake {v['acc_fake']:.3f}",
        highlight=False,
    )


def _records(run: Any) -> list:
    """The run's training records (:meth:`gendetect.runs.TrainRun.select`), saying on stderr how many test records
    were left out."""
    from gendetect.data.readers import read_records

    records, n_test = run.select(read_records(run.data, layout=run.layout, probe=True, hash=True))
    if n_test:
        err_console.print(f"excluding {n_test} records with split 'test' (test data never trains a model)")
    if not records:
        where = f" with split {run.split!r}" if run.split else ""
        raise click.ClickException(f"no images found in {run.data}{where}")
    return records
