"""``gendetect evaluate``: run an evaluation protocol; tables on stdout, reports with ``-o``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import (
    check_params,
    config_options,
    err_console,
    extractor_spec,
    handle_errors,
    markup_safe,
    parse_params,
    print_audit_warnings,
    stdout_console,
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
@config_options("ProtocolConfig")
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
@click.option(
    "--chain",
    "chains",
    multiple=True,
    help="Robustness: a delivery chain, e.g. resize:0.5+jpeg:75, a benign chain (camera-mhc), benign:* for all, "
    "or benign:camera-*+jpeg:75 for one row per match.",
)
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
@handle_errors
def evaluate(
    model: str | None,
    data_path: Path | None,
    protocol: str | None,
    config_path: Path | None,
    sets: tuple[str, ...],
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
    from gendetect.evaluation.report import save_report
    from gendetect.output import json_safe
    from gendetect.runs import load_run

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
        "extractors": [extractor_spec(c) for c in compare] or None,
    }
    if extractor:
        overrides["extractor"] = {"name": extractor, "params": parse_params(eparams)}
        check_params("extractor", extractor, overrides["extractor"]["params"], "-e")
    if detector:
        overrides["detector"] = {"name": detector, "params": parse_params(params)}
        check_params("detector", detector, overrides["detector"]["params"], "-p")
    if chains:
        from gendetect.evaluation.perturbations import expand_chains

        expand_chains(chains)  # parses every chain: an unknown step or an argument out of range fails now, not later
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
        config, _ = load_run(ProtocolConfig, config_path, sets, overrides)
        report = run_protocol(config)
    print_audit_warnings(report.get("audit"), "data audit")
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
        err_console.print(f"report written to {markup_safe(output)}", highlight=False)
    if as_json:
        click.echo(json.dumps(json_safe(report), indent=2, allow_nan=False))
        return
    from gendetect.cli.render import print_report_tables

    print_report_tables(stdout_console(), report)
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
