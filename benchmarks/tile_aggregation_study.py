"""How the default's image verdict is made from its tiles, against the alternatives, on validation data only.

The shipped tiled detector scores each 256 px tile and takes the **mean of the tile log-odds** as the image's
(``gendetect.detectors.tiled.aggregate_logits``). This study asks whether another rule would do better, with the
shipped candidate's own out-of-group fits (``scripts/train_default.py``: each fake family and each fold of real
sources scored by a model trained without it; the cached tile log-odds under ``build/default-model/`` are reused):

* other aggregates of the same tile log-odds: median, trimmed mean (the two the detector offers), the 25th and
  75th percentiles, a mean of log-odds clipped to +-1.5, the minimum and the maximum;
* an image-level model: the same detector, parameters, training rows and weights, fitted on one row per view,
  the mean and standard deviation over its signal tiles of each tile feature (no tile count, which would be the
  image size).

For each it prints the selection statistics of ``make default-model``: mean leave-one-family-out AUC, the
photoreal-only AUC, the self-made fakes flagged at the pooled 1%-FPR point, the original fakes flagged at the
pooled point and at the per-chain rule that ships (at most 1% false positives on the validation reals of every
processing chain), and that rule's worst held-out-fold FPR. Then, for the shipped rule, which chains set the
threshold: each chain's own 1%-FPR point and the TPR there, and the real sources of the highest-scoring real
views.

    python benchmarks/tile_aggregation_study.py [--shared ../shared/data] [--jobs 2]

About 3 minutes with the features and fits that ``make default-model`` cached (an hour on a fresh machine, which
extracts the features first). The candidate is the one the selection rule picks from what the shipped model
records (``--candidate`` names another; ``--cols periodic+npr`` scores it with other per-tile parts, fitted out-of-group
the same way and cached). Test rows are never read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train_default as td  # the views, features, out-of-group fits and selection statistics

from gendetect.detectors.tiled import aggregate_logits, tiles_by_image
from gendetect.evaluation.metrics import threshold_for_fpr
from gendetect.pipeline import load_model


def _per_image(z: np.ndarray, owner: np.ndarray, n: int, fn) -> np.ndarray:
    """``fn`` of each view's tile log-odds (sorted ascending), NaN for views without tiles."""
    out = np.full(n, np.nan)
    for i, t in tiles_by_image(z, owner, n):
        out[i] = fn(t)
    return out


STUDY_AGGREGATES = {  # beyond the detector's own (td.AGG_WORDS)
    "25th percentile": lambda t: float(np.quantile(t, 0.25)),
    "75th percentile": lambda t: float(np.quantile(t, 0.75)),
    "mean of log-odds clipped to +-1.5": lambda t: float(np.clip(t, -1.5, 1.5).mean()),
    "minimum": lambda t: float(t[0]),
    "maximum": lambda t: float(t[-1]),
}


def pooled_rows(feats, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row per view: the mean and standard deviation of each tile feature in ``cols`` over its signal tiles;
    and which views have any."""
    width = 2 * len(cols)
    X = np.zeros((len(feats), width), np.float32)
    ok = np.zeros(len(feats), bool)
    for k, f in enumerate(feats):
        if f is None or len(f) == 0:
            continue
        sig = f[:, 4] > 0.5
        if sig.any():
            x = f[sig][:, cols].astype(np.float64)
            X[k] = np.r_[x.mean(0), x.std(0)]
            ok[k] = True
    return X, ok


_POOLED: dict = {}


def _fit_pooled(g: str) -> tuple[np.ndarray, np.ndarray]:
    cand, views, items, X, ok, trainval, groups, labels = (
        _POOLED[k] for k in ("cand", "views", "items", "X", "ok", "trainval", "groups", "labels")
    )
    rows = td.train_rows(views, items, cand["rows"], trainval & (groups != g))
    rows = rows[ok[rows]]
    det = td.fit(cand, X[rows], labels[rows], np.ones(len(rows)), td.tile_families(views, items, rows))
    held = np.where(trainval & (groups == g) & ok)[0]
    return held, det.decision_function(X[held])


def pooled_out_of_group(cand: dict, views, items, feats, trainval: np.ndarray, jobs: int) -> np.ndarray:
    """Out-of-group image log-odds of the image-level model (NaN where a view is not scored), with the groups and
    training rows of :func:`train_default.out_of_group`."""
    n_all = len(views)
    if "fake-sweep" not in cand["rows"].split("+"):
        views, feats, trainval = td._before_fake_sweep(views, feats, trainval)
    dim = next(f.shape[1] for f in feats if f is not None and len(f)) - len(td.TILE_META)
    X, ok = pooled_rows(feats, td.columns(cand["cols"], dim))
    groups = np.asarray([items[v.item].group for v in views])
    _POOLED.update(
        cand=cand,
        views=views,
        items=items,
        X=X,
        ok=ok,
        trainval=trainval,
        groups=groups,
        labels=np.asarray([v.label for v in views]),
    )
    todo = sorted(set(groups[trainval]))
    with td.mp.get_context("fork").Pool(jobs) as pool:
        done = pool.map(_fit_pooled, todo, chunksize=1)
    out = np.full(n_all, np.nan)
    for held, z in done:
        out[held] = z
    return out


def _f(v: float) -> str:
    return f"{v:.3f}" if np.isfinite(v) else "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="as make default-model's --seed")
    ap.add_argument("--zoo-steps", type=int, default=300, help="as make default-model's --zoo-steps")
    ap.add_argument("--candidate", default=None, help="a name in train_default.CANDIDATES (default: the shipped one)")
    ap.add_argument("--model", default=None, help="the model whose recorded selection names the candidate")
    ap.add_argument(
        "--cols", default=None, help="the candidate with other per-tile parts, e.g. periodic+npr (default: its own)"
    )
    args = ap.parse_args(argv)
    if not args.shared.is_dir():
        print(f"{args.shared} not found: the study reads the validation rows of ../shared/data", file=sys.stderr)
        return 2
    name = args.candidate
    if name is None:
        selection = load_model(args.model).info.get("selection")
        if not selection:
            print("the model records no candidate selection; name one with --candidate", file=sys.stderr)
            return 2
        name = td.choose(selection)
    if name not in td.CANDIDATES:
        print(f"unknown candidate {name!r}; valid: {list(td.CANDIDATES)}", file=sys.stderr)
        return 2
    cand = td.CANDIDATES[name]
    if args.cols is not None:
        try:
            td.part_names(args.cols)
        except ValueError as e:  # names the valid parts
            print(e, file=sys.stderr)
            return 2
        cand = {**cand, "cols": args.cols}
    print(f"candidate: {name}" + (f", per-tile parts {args.cols}" if args.cols else ""))

    t0 = time.time()
    items = td.collect(args.shared.resolve())
    views = td.all_views(items, args.seed, args.zoo_steps)
    feats, _ = td.extract(views, args.jobs)
    splits = np.asarray([items[v.item].split for v in views])
    trainval = (splits == "trainval") & np.asarray([f is not None for f in feats])
    owner, z = td.cached_tile_logits(cand, views, items, feats, trainval, jobs=args.jobs)
    n = len(views)
    rules: dict[str, np.ndarray] = {}
    shipped = cand.get("agg", "mean")
    for agg, words in td.AGG_WORDS.items():
        rules[words + (" (the shipped rule)" if agg == shipped else "")] = aggregate_logits(z, owner, n, agg)
    for words, fn in STUDY_AGGREGATES.items():
        rules[words] = _per_image(z, owner, n, fn)
    rules["image-level model on tile means and SDs"] = pooled_out_of_group(
        cand, views, items, feats, trainval, args.jobs
    )
    print(f"(views and fits ready in {time.time() - t0:.0f} s)\n")

    print(
        "validation, out-of-group | mean LOFO AUC | photoreal AUC | self-made (pooled 1%) | TPR pooled 1% | "
        "TPR per-chain rule | worst held-out chain FPR"
    )
    results = {}
    for rule, s in rules.items():
        r = results[rule] = td.candidate_results(s, views, items, trainval)
        print(
            f"{rule:44s} {_f(r['mean_family_auc'])}  {_f(r['photoreal_auc'])}  {_f(r['tpr_selfmade'])}  "
            f"{_f(r['tpr_originals'])}  {_f(r['tpr_per_chain_rule'])}  {_f(r['worst_held_out_fpr'])}"
        )
    print("\nper family, AUC (TPR at the per-chain rule):")
    for rule, r in results.items():
        at = td.summarise(
            r["scores"], views, items, trainval, td.per_chain_rule(r["scores"], views, items, trainval)["threshold"]
        )
        print(
            f"  {rule:44s} "
            + ", ".join(f"{f} {_f(m['auc'])} ({_f(at['per_family'][f]['tpr'])})" for f, m in r["per_family"].items())
        )

    s = next(v for k, v in rules.items() if k.endswith("(the shipped rule)"))
    labels = np.asarray([v.label for v in views])
    real = trainval & (labels == 0) & np.isfinite(s)
    chain = np.asarray([td.chain_of(v) for v in views], dtype=object)
    orig_fake = trainval & (labels == 1) & np.isfinite(s) & np.asarray([v.kind == "original" for v in views])
    print(
        "\nwhich chains set the shipped rule's threshold (each chain's own 1%-FPR point on its validation reals, "
        "log-odds, and the original fakes flagged there):"
    )
    rows = []
    for c in sorted(set(chain[real])):
        t = threshold_for_fpr(s[real & (chain == c)], td.MAX_FPR, conformal=td.CONFORMAL)
        rows.append((t, c, int((real & (chain == c)).sum()), float(np.mean(s[orig_fake] > t))))
    for t, c, m, tpr in sorted(rows, reverse=True):
        print(f"  {c:24s} n={m:4d}  1% point {t:6.3f}  TPR {tpr:.3f}")
    top = [k for k in np.argsort(-np.where(real, s, -np.inf))[:40]]
    sources = Counter(items[views[k].item].source for k in top).most_common()
    print(f"sources of the 40 highest-scoring real views: {dict(sources)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
