"""Several models side by side on one labelled set: ``gendetect evaluate --compare-models default,univfd,npr``.

Each model (the embedded default, a model directory, or a published detector's name from :mod:`gendetect.zoo`)
runs the existing ``per-generator`` protocol on the same records; the report puts each model's AUC and AP per
generator and its false-positive rate on the real photos (at the model's own threshold) in one place. A model
that cannot be loaded (weights missing, an extra not installed) gets its error in the report; the others still run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from gendetect.errors import GendetectError

logger = logging.getLogger(__name__)


def compare_models(
    models: Sequence[str],
    data: str | os.PathLike,
    *,
    layout: str = "auto",
    split: str | None = None,
    exclude_split: str | None = None,
    n_boot: int = 0,
    jobs: int = 1,
    store: str | None = None,
) -> dict[str, Any]:
    """Run ``per-generator`` for every model in ``models`` on ``data``; one report with tables side by side.

    Returns ``{"protocol": "compare-models", "models": {name: summary or {"error": ...}}, "tables": [...], ...}``;
    a summary holds ``auc``, ``ap``, ``fpr_real`` (the share of real images called fake at the model's
    threshold), ``threshold`` and ``per_generator`` ``{generator: {"auc", "ap", "n_fake"}}``.
    """
    from gendetect.data.readers import read_records
    from gendetect.evaluation.protocols import ProtocolConfig, run_protocol
    from gendetect.provenance import provenance

    records = read_records(data, layout=layout)
    results: dict[str, dict[str, Any]] = {}
    data_block: dict[str, Any] | None = None
    for name in models:
        config = ProtocolConfig(
            protocol="per-generator",
            data=str(data),
            layout=layout,
            model=None if name == "default" else name,
            split=split,
            exclude_split=exclude_split,
            n_boot=n_boot,
            jobs=jobs,
            store=store,
        )
        try:
            report = run_protocol(config, records=list(records))
        except (GendetectError, ImportError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            logger.warning("compare: %s not run: %s (the report's 'detail' says how to fix it)", name, first)
            results[name] = {"error": first, "detail": str(e)}
            continue
        data_block = data_block or report["data"]
        m = report["metrics"]
        overall = m["all"]
        results[name] = {
            "model": report["model"],
            "threshold": report["threshold"],
            "auc": overall.get("auc"),
            "ap": overall.get("ap"),
            "n_real": overall.get("n_real"),
            "n_fake": overall.get("n_fake"),
            "fpr_real": (1.0 - overall["acc_real"]) if overall.get("n_real") else None,
            "per_generator": {
                g: {"auc": v.get("auc"), "ap": v.get("ap"), "n_fake": v.get("n_fake")}
                for g, v in m.items()
                if g != "all"
            },
        }
    generators = sorted({g for r in results.values() for g in r.get("per_generator", {})})
    summary_rows = [
        [name, "ok", r["n_real"], r["n_fake"], r["threshold"], r["fpr_real"], r["auc"], r["ap"]]
        if "error" not in r
        else [name, f"not run: {r['error']}", None, None, None, None, None, None]
        for name, r in results.items()
    ]
    tables = [
        {
            "title": "Models side by side (FPR on reals at each model's own threshold)",
            "columns": ["model", "status", "n_real", "n_fake", "threshold", "fpr_real", "auc", "ap"],
            "rows": summary_rows,
            "note": None,
        }
    ]
    for metric in ("auc", "ap"):
        tables.append(
            {
                "title": f"{metric.upper()} per generator",
                "columns": ["model", *generators],
                "rows": [
                    [name, *[r["per_generator"].get(g, {}).get(metric) for g in generators]]
                    for name, r in results.items()
                    if "error" not in r
                ],
                "note": None,
            }
        )
    return {
        "protocol": "compare-models",
        "config": {
            "models": list(models),
            "data": str(data),
            "layout": layout,
            "split": split,
            "exclude_split": exclude_split,
            "n_boot": n_boot,
        },
        "data": data_block or {"n_images": len(records), "n_unreadable": 0},
        "models": results,
        "tables": tables,
        "figures": {},
        "provenance": provenance(),
    }
