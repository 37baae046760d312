"""Every rich table the CLI prints. The library returns data (dicts and lists); this module draws it.

Markdown and HTML reports are :mod:`gendetect.evaluation.render`; rows of a scan are written by
:mod:`gendetect.output`.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text


def cell(v: Any) -> str:
    """A table cell: ``-`` for missing and NaN, floats to three decimals."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


# -- data describe -----------------------------------------------------------------------------------------------
_DESCRIBE_TABLES = (
    ("generators", "generator"),
    ("sources", "source"),
    ("splits", "split"),
    ("formats", "format"),
    ("modes", "mode"),
    ("sizes", "long side (px)"),
    ("exif", "EXIF"),
)


def _natural_key(value: str) -> tuple[int, float, str]:
    """Sort size buckets by their number ("<256" before "1024-2047"), then the rest alphabetically."""
    digits = "".join(c if c.isdigit() else " " for c in value).split()
    return (0, float(digits[0]), value) if digits and value[0] in "<>0123456789" else (1, 0.0, value)


def describe_table(summary: dict[str, Any]) -> Group:
    """:func:`gendetect.data.manifest.describe`'s summary as a ``Group`` of a headline, tables and warnings."""
    parts: list[Any] = [
        Text.assemble(
            (str(summary["n_images"]), "bold"),
            f" images ({summary['n_errors']} unreadable): ",
            ", ".join(f"{k} {v}" for k, v in summary["labels"].items()),
        )
    ]
    for key, title in _DESCRIBE_TABLES:
        per_label = summary.get(key) or {}
        labels = sorted(per_label)
        values = sorted({v for counts in per_label.values() for v in counts}, key=_natural_key)
        if not values or (key in ("splits", "sources") and values == ["None"]):
            continue
        table = Table(title=f"by {title}", show_edge=False, title_justify="left")
        table.add_column(title)
        for label in labels:
            table.add_column(label, justify="right")
        for v in values:
            table.add_row(v, *[str(per_label[label].get(v, "")) for label in labels])
        parts.append(table)
    for label, q in summary.get("jpeg_quality", {}).items():
        parts.append(
            Text(f"JPEG quality of {label}: median {q['median']:.0f} (min {q['min']}, max {q['max']}, n {q['n']})")
        )
    for w in summary.get("warnings", []):
        parts.append(Text.assemble(("warning: ", "yellow"), w))
    return Group(*parts)


def print_description(summary: dict[str, Any], console: Console) -> None:
    """Print :func:`gendetect.data.manifest.describe`'s summary as tables on ``console``."""
    console.print(describe_table(summary), highlight=False)


# -- evaluate ----------------------------------------------------------------------------------------------------
def print_report_tables(console: Console, report: dict[str, Any]) -> None:
    """The ``tables`` of a protocol report (``{"title", "columns", "rows", "note"}`` each), one rich table each."""
    for t in report["tables"]:
        table = Table(title=t["title"], show_edge=False)
        for i, col in enumerate(t["columns"]):
            table.add_column(str(col), justify="left" if i == 0 else "right")
        for row in t["rows"]:
            table.add_row(*[cell(v) for v in row])
        console.print(table)
        if t.get("note"):
            console.print(t["note"], style="dim", highlight=False)


# -- model -------------------------------------------------------------------------------------------------------
_METRIC_COLUMNS = (
    ("n_real", "reals"),
    ("n_fake", "fakes"),
    ("n", "n"),
    ("auc", "AUC"),
    ("ap", "AP"),
    ("acc_real", "acc real"),
    ("fpr", "FPR"),
    ("real_called_real", "reals real"),
    ("acc_fake", "TPR@thr"),
    ("fake_or_uncertain", "fake|unc"),
    ("tpr_at_1fpr", "TPR@1%FPR"),
    ("same_verdict", "same verdict"),
    ("ece", "ECE"),
    ("verdicts", "verdicts"),
    ("flips", "verdict flips"),
)
_INLINE_AT_MOST = 6  # a group of more plain numbers than this is a two-column table, not a line


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _counts(v: Any) -> str:
    """``{"fake": 8, "uncertain": 2}`` -> ``fake 8, uncertain 2``; anything else as a cell."""
    if isinstance(v, dict):
        return ", ".join(f"{k} {cell(x)}" for k, x in v.items()) or "-"
    return cell(v)


def _with_fpr(v: dict[str, Any]) -> dict[str, Any]:
    if "fpr" in v or not isinstance(v.get("acc_real"), (int, float)) or v.get("n_fake"):
        return v
    return {**v, "fpr": 1.0 - float(v["acc_real"])}


def _is_row(v: Any) -> bool:
    """A group's metrics: mostly known columns, and nothing nested but verdict counts."""
    if not isinstance(v, dict) or not v:
        return False
    known = sum(c in v for c, _ in _METRIC_COLUMNS)
    nested_ok = all(_scalar(x) or isinstance(x, list) or k in ("verdicts", "flips") for k, x in v.items())
    return nested_ok and 2 * known > len(v)


def print_metric_tables(console: Console, title: str, metrics: dict[str, Any]) -> None:
    """What a model records about itself, at any depth, with nothing left out but long lists.

    Plain numbers at one level are a line (``title: key value, ...``) or, when many, a two-column table; groups
    whose keys are mostly the known columns (``binary_metrics``, verdict counts, ``fake|unc``, ``same verdict``)
    are rows of a table; any other nested mapping is shown the same way under ``title: key``. Lists are left out.
    """
    plain = {k: v for k, v in metrics.items() if _scalar(v)}
    rows = {k: v for k, v in metrics.items() if _is_row(v)}
    if plain and len(plain) <= _INLINE_AT_MOST:
        console.print(f"{title}: " + ", ".join(f"{k} {cell(v)}" for k, v in plain.items()), highlight=False)
    elif plain:
        console.print(f"{title}:", highlight=False)  # the title on its own line: a table wraps it to its width
        table = Table(show_edge=False)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in plain.items():
            table.add_row(k, cell(v))
        console.print(table)
    if rows:
        # groups of reals only (a chain's copies): the false-positive rate beside the accuracy it is 1 minus
        rows = {k: _with_fpr(v) for k, v in rows.items()}
        cols = [(c, h) for c, h in _METRIC_COLUMNS if any(c in v for v in rows.values())]
        console.print(f"{title}:", highlight=False)
        table = Table(show_edge=False)
        table.add_column("group")
        for c, h in cols:
            table.add_column(h, justify="left" if c in ("verdicts", "flips") else "right")
        for name in sorted(rows, key=lambda k: (k != "all", k)):
            table.add_row(name, *[_counts(rows[name].get(c)) for c, _ in cols])
        console.print(table)
    for k, v in metrics.items():
        if k not in rows and isinstance(v, dict) and v:
            print_metric_tables(console, f"{title}: {k}", v)


def print_model_card(console: Console, pipeline: Any, config: dict[str, Any], warnings: list[str]) -> None:
    """``gendetect model``: extractor, detector, threshold, training data, validation tables and audit."""
    console.print(f"[bold]{pipeline.name}[/bold]  ({pipeline.info.get('path')})", highlight=False)
    console.print(f"extractor: {pipeline.extractor!r}", highlight=False)
    console.print(f"detector:  {pipeline.detector.get_config()}", highlight=False)
    rule = config.get("threshold_rule", {})
    console.print(
        f"threshold: {pipeline.threshold:.4f}  ({rule.get('rule', 'n/a')}; {rule.get('scheme', '')})", highlight=False
    )
    if pipeline.uncertain_from is not None:
        console.print(
            f"uncertain: {pipeline.uncertain_from:.4f} < P(fake) <= {pipeline.threshold:.4f} "
            f"(the point with {rule.get('uncertain_fpr')} FPR on the pooled validation reals)",
            highlight=False,
        )
    training = config.get("training", {})
    console.print(f"trained on: {training.get('n_images')} images, {training.get('labels')}", highlight=False)
    if training.get("licences_per_family"):
        words = "; ".join(
            f"{fam}: " + ", ".join(f"{lic} ({n})" for lic, n in lics.items())
            for fam, lics in training["licences_per_family"].items()
        )
        console.print(f"licences:  {words}", highlight=False)
    cal = config.get("calibration")
    name = cal.get("name", cal) if isinstance(cal, dict) else cal
    if not cal:
        words = "an uncalibrated score (higher = more likely generated), not a probability"
    elif name == "temperature":  # no intercept: the prior the training weights set stays in the score
        words = (
            "a calibrated score (temperature scaling): it keeps the midpoint the training weights set, so it is "
            "not the probability for your stream's share of fakes"
        )
    else:
        words = f"a calibrated score ({name}, fitted on the validation scores and their mix of classes)"
    console.print(f"P(fake):   {words}", highlight=False)
    if isinstance(config.get("validation"), dict) and config["validation"]:
        console.print(f"validation scores: {rule.get('scheme', 'out-of-fold')}", highlight=False)
        print_metric_tables(console, "validation", config["validation"])
    if isinstance(config.get("test"), dict) and config["test"]:
        console.print("test rows: never used to train, choose or calibrate; scored once at the end", highlight=False)
        print_metric_tables(console, "test", config["test"])
    audit = config.get("audit")
    if not audit:
        console.print("audit: none recorded (trained with the shortcut audit off)", highlight=False)
        return
    checks = [("file facts", audit)] + [(c, audit[c]) for c in ("border", "text_strip", "content") if c in audit]
    aucs = ", ".join(f"{name} {c['auc']:.2f}" for name, c in checks if isinstance(c.get("auc"), float))
    console.print(f"audit (AUC of each shortcut check; chance 0.50): {aucs or 'n/a'}", highlight=False)
    for message in warnings:
        console.print(f"[bold red]audit warning:[/bold red] {message}", highlight=False)


# -- models (the zoo) ----------------------------------------------------------------------------------------------
def zoo_table(rows: list[dict[str, str]]) -> Table:
    """``gendetect models list``: name, paper, licence (its short form) and whether the files are cached."""
    table = Table(show_edge=False, header_style="bold")
    for col in ("name", "paper", "licence", "cached"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["paper"], r["licence"].split(" (")[0].split(":")[0], r["cached"])
    return table
