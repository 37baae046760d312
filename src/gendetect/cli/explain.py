"""``gendetect explain``: why a verdict, written to a folder."""

from __future__ import annotations

from pathlib import Path

import click

from gendetect.cli import main
from gendetect.cli._common import err_console, handle_errors
from gendetect.limits import DEFAULT_MAX_PIXELS


@main.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write."
)
@click.option("-m", "--model", default=None, help="Model directory. Default: the embedded one.")
@click.option("--evidence/--no-evidence", default=True, show_default=True, help="Read and fuse the file's evidence.")
@click.option("--max-pixels", default=DEFAULT_MAX_PIXELS, show_default=True, help="Refuse larger images (bombs).")
@handle_errors
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
