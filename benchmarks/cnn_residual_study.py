"""Issue 14's model comparison: logistic regression, gradient boosting and a small CNN trained from scratch on
residual maps, on the same validation folds of the default model's training views.

Validation only (``split`` trainval; never a test row or ``diffusion-examples``). The views are those of
``scripts/train_default.py`` (originals, 4 benign chains per image for both classes, self-made fakes and their real
twins). Fake families are split into ``--folds`` groups (reals into as many folds of their sources); every model is
trained without a group and scores it, so each family's AUC is leave-its-group-out. Training rows follow the
shipped model's rule (``--rows``, default ``no-gan``: GAN-era fakes are scored, never trained on). Printed per model: mean
per-family AUC, TPR at the 1%-FPR point of all validation reals (processed ones included), the worst per-chain FPR
at that point, and the fit time, as a ratio to the logistic model's, measured in this run.

- ``logistic`` and ``hgb``: the default's per-tile ``periodic`` + ``npr`` + ``noise`` features (``--cols``) from the training script's
  cache (``build/default-model/``; run ``python scripts/train_default.py --features-only`` first), mean tile
  log-odds per image.
- ``cnn``: a ~20k-parameter network (no early down-sampling, so period-2/4/8 traces survive) on the high-pass
  residual (image minus its 3x3 mean) of the central 224 px, trained on random 64 px crops with flips, scored
  fully-convolutionally on the whole 224 px. torch on the CPU; ``--epochs`` sets the budget.

    python benchmarks/cnn_residual_study.py [--folds 3] [--epochs 6] [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train_default as td

from gendetect.detectors.tiled import aggregate_logits
from gendetect.evaluation.metrics import roc_auc, threshold_for_fpr
from gendetect.provenance import provenance

CROP = 224
CACHE = td.CACHE / "cnn-study"


def fold_of(items, folds: int) -> np.ndarray:
    """Each trainval image's validation fold: fake groups dealt out by size, real groups by their own hash."""
    groups = sorted({it.group for it in items if it.split == "trainval" and it.label == 1},
                    key=lambda g: -sum(it.group == g for it in items))
    fake_fold = {g: i % folds for i, g in enumerate(groups)}
    out = np.full(len(items), -1)
    for i, it in enumerate(items):
        if it.split != "trainval":
            continue
        if it.label == 1:
            out[i] = fake_fold[it.group]
        else:
            out[i] = int(hashlib.sha256(it.group.encode()).hexdigest(), 16) % folds
    return out


# -- pixels for the CNN ------------------------------------------------------------------------------------------
def centre(image, size: int = CROP) -> np.ndarray:
    image = image.convert("RGB")
    w, h = image.size
    if min(w, h) < size:
        scale = size / min(w, h)  # only cnndetection's 240 px crops are near this; none is smaller than 224
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))))
        w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _pixels(task):
    path, region, chain, seed = task
    try:
        return centre(td.view_image(path, region, chain, seed))
    except Exception:  # noqa: BLE001 - a view that fails is left out, as in the training script
        return None


def load_pixels(views, jobs: int) -> np.ndarray:
    """(n, 224, 224, 3) uint8 central crops of every view, cached; a failed view is all zeros (and masked)."""
    key = hashlib.sha256("|".join(f"{v.path}|{v.region}|{v.chain}|{v.seed}" for v in views).encode()).hexdigest()
    f = CACHE / f"pixels-{key[:12]}.npy"
    if f.exists():
        return np.load(f, mmap_mode="r")
    import multiprocessing as mp

    CACHE.mkdir(parents=True, exist_ok=True)
    out = np.zeros((len(views), CROP, CROP, 3), np.uint8)
    tasks = [(v.path, v.region, v.chain, v.seed) for v in views]
    with mp.get_context("fork").Pool(jobs) as pool:
        for k, x in enumerate(pool.imap(_pixels, tasks, chunksize=8)):
            if x is not None:
                out[k] = x
    np.save(f, out)
    return out


def make_net(torch):
    nn = torch.nn

    def block(i, o, s=1):
        return [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(3, 8), *block(8, 8),  # full resolution: no early down-sampling
        *block(8, 16, 2), *block(16, 16),
        *block(16, 32, 2), *block(32, 32),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1),
    )


def residual(torch, x):
    """uint8 (n, h, w, 3) → float (n, 3, h, w): the image minus its 3x3 mean, scaled."""
    x = x.permute(0, 3, 1, 2).float() / 255.0
    blur = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    return (x - blur) * 20.0


def fit_cnn(torch, pixels, rows, y, w, epochs: int, seed: int):
    """Train on the views ``rows`` of ``pixels`` (labels ``y``, weights ``w``, one per row)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = make_net(torch)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    n = len(y)
    steps = epochs * (n // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=max(steps, 1))
    yt = torch.as_tensor(y, dtype=torch.float32)
    wt = torch.as_tensor(w, dtype=torch.float32)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for b in range(n // 64):
            idx = order[b * 64:(b + 1) * 64]
            ox, oy = torch.randint(0, CROP - 64 + 1, (2,), generator=g).tolist()
            batch = torch.from_numpy(np.ascontiguousarray(pixels[rows[idx.numpy()], oy:oy + 64, ox:ox + 64]))
            if torch.rand(1, generator=g).item() < 0.5:
                batch = batch.flip(2)
            logits = net(residual(torch, batch)).squeeze(1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt[idx], weight=wt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def score_cnn(torch, net, pixels, rows) -> np.ndarray:
    out = []
    with torch.no_grad():
        for b in range(0, len(rows), 32):
            batch = torch.from_numpy(np.ascontiguousarray(pixels[rows[b:b + 32]]))
            out.append(net(residual(torch, batch)).squeeze(1).numpy())
    return np.concatenate(out) if out else np.zeros(0)


# -- the comparison ----------------------------------------------------------------------------------------------
def summary(scores, views, items, ok) -> dict:
    labels = np.asarray([v.label for v in views])
    orig = np.asarray([v.kind == "original" for v in views])
    fin = ok & np.isfinite(scores)
    reals = fin & (labels == 0)
    thr = threshold_for_fpr(scores[reals], td.MAX_FPR)
    reals0 = reals & orig
    fam = defaultdict(list)
    for k in np.where(fin & orig & (labels == 1))[0]:
        fam[items[views[k].item].group].append(k)
    aucs = {f: roc_auc(np.r_[np.zeros(reals0.sum()), np.ones(len(ks))], np.r_[scores[reals0], scores[ks]])
            for f, ks in sorted(fam.items())}
    chains = defaultdict(list)
    for k in np.where(reals & ~orig)[0]:
        chains[views[k].chain if views[k].kind == "processed" else views[k].kind].append(scores[k] > thr)
    return {
        "mean_auc": float(np.mean(list(aucs.values()))),
        "aucs": aucs,
        "tpr": float(np.mean(scores[fin & orig & (labels == 1)] > thr)),
        "worst_chain": max((float(np.mean(v)), c) for c, v in chains.items()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="logistic,hgb,cnn")
    ap.add_argument("--rows", default="no-gan+no-selfmade", help="training-row rule of scripts/train_default.py "
                    "(default: the shipped model's: no GAN-era fakes, no self-made fakes)")
    ap.add_argument("--cols", default="periodic+npr+noise",
                    help="tile features for logistic/hgb: a \"+\"-joined subset of train_default.PARTS, or all (periodic+npr)")
    ap.add_argument("--json", type=Path, default=td.STUDY,
                    help="write the figures here (default: the repo's copy, which the default-model script puts in "
                         "the model card)")
    args = ap.parse_args(argv)
    if not args.shared.is_dir():
        print(f"{args.shared} not found: the study reads ../shared/data", file=sys.stderr)
        return 2
    items = td.collect(args.shared)
    views = td.plan_views(items, args.seed) + td.selfmade_views(items, args.seed, 300)
    feats, _ = td.extract(views, args.jobs)
    fold_item = fold_of(items, args.folds)
    fold = np.asarray([fold_item[v.item] for v in views])
    labels = np.asarray([v.label for v in views])
    ok = (fold >= 0) & np.asarray([f is not None and len(f) > 0 for f in feats])
    print(f"{int(ok.sum())} trainval views in {args.folds} folds; families per fold: "
          + "; ".join(",".join(sorted({it.group for i, it in enumerate(items) if fold_item[i] == k and it.label}))
                      for k in range(args.folds)))
    results, times = {}, {}
    dim = next(f.shape[1] for f in feats if f is not None and len(f)) - len(td.TILE_META)
    cols = td.columns(args.cols, dim)
    models = args.models.split(",")
    pixels = load_pixels(views, args.jobs) if "cnn" in models else None
    for model in models:
        scores = np.full(len(views), np.nan)
        t0 = time.perf_counter()
        for k in range(args.folds):
            train = td.train_rows(views, items, args.rows, ok & (fold != k))
            held = np.where(ok & (fold == k))[0]
            if model == "cnn":
                import torch

                torch.set_num_threads(max(1, args.jobs))
                w = np.where(labels[train] == 1, 0.5 / labels[train].mean(), 0.5 / (1 - labels[train].mean()))
                net = fit_cnn(torch, pixels, train, labels[train], w, args.epochs, args.seed + k)
                scores[held] = score_cnn(torch, net, pixels, held)
            else:
                X, owner, wt = td.tile_table(feats, train)
                params = {"C": 0.05} if model == "logistic" else td.HGB
                det = td.fit(model, params, X[:, cols], labels[owner], wt)
                owner, z = td.tile_logits(det, feats, held, cols)
                scores[held] = aggregate_logits(z, owner, len(views))[held]
        times[model] = time.perf_counter() - t0
        results[model] = summary(scores, views, items, ok)
        r = results[model]
        print(f"{model:9s} mean family AUC {r['mean_auc']:.3f}  TPR@1%FPR {r['tpr']:.3f}  "
              f"worst chain FPR {r['worst_chain'][0]:.3f} ({r['worst_chain'][1]})  fit+score {times[model]:.0f} s",
              flush=True)
        print("          " + "  ".join(f"{f} {a:.2f}" for f, a in r["aucs"].items()))
    base = times.get("logistic") or next(iter(times.values()))
    print("time ratios (this run): " + ", ".join(f"{m} {t / base:.1f}x" for m, t in times.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        **provenance(views=int(ok.sum())),
        "command": "python benchmarks/cnn_residual_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "folds": args.folds, "epochs": args.epochs, "seed": args.seed, "rows": args.rows, "cols": args.cols,
        "models": {m: {"mean_auc": r["mean_auc"], "aucs": r["aucs"], "tpr_at_1pct_fpr": r["tpr"],
                       "worst_chain_fpr": r["worst_chain"][0], "worst_chain": r["worst_chain"][1],
                       "time_ratio": times[m] / base} for m, r in results.items()},
    }, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
