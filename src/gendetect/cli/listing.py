"""``gendetect list``: the registered extractors, detectors, generators and processing chains."""

from __future__ import annotations

import click

from gendetect.cli import main


@main.command("list")
@click.argument("kind", type=click.Choice(["extractors", "detectors", "generators", "chains"]))
@click.argument("pattern", default="*")
def list_cmd(kind: str, pattern: str) -> None:
    """List registered extractors, detectors, generators or chains (optionally matching a wildcard PATTERN).

    ``chains`` lists the robustness perturbations (``jpeg:75``) and the benign processing chains that train and
    calibrate the default model, with their specs: each is a valid ``evaluate --chain``.
    """
    from gendetect.detectors import list_detectors
    from gendetect.features import list_extractors

    if kind == "chains":
        from gendetect.augment.benign import BENIGN
        from gendetect.evaluation.perturbations import PERTURBATIONS, benign_spec

        benign_only = pattern.startswith("benign:")  # the --chain spelling of a benign pattern
        pattern = pattern.removeprefix("benign:")
        for name in [] if benign_only else PERTURBATIONS.list(pattern):
            if name != "benign":
                doc = (PERTURBATIONS.get(name).__doc__ or "").strip().splitlines()[0].replace("``", "")
                click.echo(f"{PERTURBATIONS.get(name)().spec:22} {'perturbation':14} {doc}")
        for name in BENIGN.list(pattern):
            if name == "none":  # the same as the perturbation above
                continue
            click.echo(f"{benign_spec(name):22} {'benign chain':14} {BENIGN.create(name).spec}")
        return
    if kind == "generators":
        from gendetect.generation import get_generator, list_generators

        for name in list_generators(pattern):
            spec = get_generator(name)
            click.echo(f"{name:18} {spec.repo or spec.backend:48} {spec.notes}".rstrip())
        return
    for name in (list_extractors if kind == "extractors" else list_detectors)(pattern):
        click.echo(name)
