"""``gendetect train``: train a detector on a labelled folder or manifest and save a model directory."""

from __future__ import annotations

from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import (
    check_params,
    err_console,
    handle_errors,
    load_records,
    open_store,
    parse_params,
    print_audit_warnings,
    progress_bar,
)


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
        recipe[kind]["params"].update(parse_params(extra))
    for kind, flag in (("extractor", "-e"), ("detector", "-p")):  # before any work, not after feature extraction
        check_params(kind, recipe[kind]["name"], recipe[kind]["params"], flag)
    ext = create_extractor(recipe["extractor"]["name"], **recipe["extractor"]["params"])
    det = create_detector(recipe["detector"]["name"], **recipe["detector"]["params"])
    records = load_records(data_path, layout, split, exclude_test=True)
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
        store=open_store(store_dir, ext),
        progress=progress_bar(progress, "features"),
    )
    print_audit_warnings(pipeline.info.get("audit"), "training audit")
    pipeline.save(output)
    v = pipeline.info["validation"]["all"]
    err_console.print(
        f"saved {output}: threshold {pipeline.threshold:.4f} (validation FPR <= {target_fpr:g}); "
        f"validation AUC {v['auc']:.3f}, acc real {v['acc_real']:.3f}, acc fake {v['acc_fake']:.3f}",
        highlight=False,
    )
