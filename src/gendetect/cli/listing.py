"""``gendetect list``: the registered extractors, detectors, generators and processing chains."""

from __future__ import annotations

import difflib

import click

from gendetect.cli import main


@main.command("list")
@click.argument("kind", type=click.Choice(["extractors", "detectors", "generators", "chains"]))
@click.argument("pattern", default="*")
def list_cmd(kind: str, pattern: str) -> None:
    """List registered extractors, detectors, generators or chains (optionally matching a wildcard PATTERN).

    ``chains`` lists the robustness perturbations (``jpeg:75``) and the benign processing chains that train and
    calibrate the default model, with their specs: each is a valid ``evaluate --chain``. A PATTERN that matches
    nothing is an error that lists every name.
    """
    rows = _rows(kind, pattern)
    if not rows:  # say so, as an unknown name would, rather than print nothing and succeed
        names = [name for name, _ in _rows(kind, "*")]
        raise click.BadParameter(
            f"no {kind} match {pattern!r} (a name, or a shell pattern such as {_EXAMPLES[kind]!r})."
            f"{_close(pattern, names)} They are: {', '.join(names)}.",
            param_hint="'PATTERN'",
        )
    for _, line in rows:
        click.echo(line)


_EXAMPLES = {"extractors": "*clip*", "detectors": "knn*", "generators": "sd*", "chains": "benign:camera-*"}


def _close(pattern: str, names: list[str]) -> str:
    """The "Did you mean ...?" hint for a misspelt name (none for a wildcard pattern); ``benign:`` is not compared."""
    if any(c in pattern for c in "*?["):
        return ""
    bare = {name.removeprefix("benign:"): name for name in names}
    close = difflib.get_close_matches(pattern.removeprefix("benign:"), list(bare), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(bare[c]) for c in close)}?" if close else ""


def _rows(kind: str, pattern: str) -> list[tuple[str, str]]:
    """``(name, line)`` for each ``kind`` matching ``pattern``: the name as ``gendetect`` takes it, the line as
    ``gendetect list`` prints it."""
    if kind == "chains":
        from gendetect.augment.benign import BENIGN
        from gendetect.evaluation.perturbations import PERTURBATIONS, benign_spec

        benign_only = pattern.startswith("benign:")  # the --chain spelling of a benign pattern
        pattern = pattern.removeprefix("benign:")
        rows = []
        for name in [] if benign_only else PERTURBATIONS.list(pattern):
            if name != "benign":
                spec = PERTURBATIONS.get(name)().spec
                doc = (PERTURBATIONS.get(name).__doc__ or "").strip().splitlines()[0].replace("``", "")
                rows.append((spec, f"{spec:22} {'perturbation':14} {doc}"))
        for name in BENIGN.list(pattern):
            if name != "none":  # the same as the perturbation above
                spec = benign_spec(name)
                rows.append((spec, f"{spec:22} {'benign chain':14} {BENIGN.create(name).spec}"))
        return rows
    if kind == "generators":
        from gendetect.generation import get_generator, list_generators

        rows = []
        for name in list_generators(pattern):
            spec = get_generator(name)
            rows.append((name, f"{name:18} {spec.repo or spec.backend:48} {spec.notes}".rstrip()))
        return rows
    from gendetect.detectors import list_detectors
    from gendetect.features import list_extractors

    return [(name, name) for name in (list_extractors if kind == "extractors" else list_detectors)(pattern)]
