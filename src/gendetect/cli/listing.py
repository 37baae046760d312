"""``gendetect list``: the registered extractors, detectors and generators."""

from __future__ import annotations

import click

from gendetect.cli import main


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
