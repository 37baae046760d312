"""``gendetect model`` (what a model directory holds), ``gendetect models`` (the zoo of published detectors) and
``gendetect import`` (released heads)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import err_console, handle_errors, stdout_console


# -- import ---------------------------------------------------------------------------------------------------
@main.group("import")
def import_group() -> None:
    """Convert released detectors into gendetect models."""


@import_group.command("univfd")
@click.argument("fc_weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Model directory to write.")
@click.option("--clip-model", default="ViT-L-14", show_default=True, help="open_clip architecture of the backbone.")
@click.option("--pretrained", default="openai", show_default=True, help="Backbone weights (tag, hf-hub id or file).")
@handle_errors
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
@handle_errors
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
    from gendetect.cli.render import zoo_table

    stdout_console().print(zoo_table(rows))


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
@handle_errors
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
@handle_errors
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
@handle_errors
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


@main.command("model")
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the full config as JSON.")
@handle_errors
def model_cmd(model: str | None, as_json: bool) -> None:
    """Show a model's extractor, detector, threshold, training data and validation metrics (default model if none)."""
    from gendetect.evaluation.audit import audit_warnings
    from gendetect.pipeline import load_model

    pipeline = load_model(model)
    config = pipeline.get_config()
    if as_json:
        config["audit_warnings"] = audit_warnings(config.get("audit"))
        click.echo(json.dumps(config, indent=2, default=str))
        return
    from gendetect.cli.render import print_model_card

    print_model_card(stdout_console(), pipeline, config, audit_warnings(config.get("audit")))
