"""What benignly processed reals and self-made fakes add to a weight-free detector (issue 14's study, redone).

Data (``trainval`` rows only; never ``test`` rows, never ``diffusion-examples/``):

* reals: ``real-photos`` (lossless, <= 384 px), ``cnndetection-gallery`` reals centre-cropped to 224 px (inside the
  frame, whose colour leaks the label), ``wright-photos`` trainval reals cut to their top 1024 x 768 (the bottom is
  a printed caption that leaks the label). They are split at random into a train half and a validation half.
* fakes: ``modern-fakes`` trainval rows (13 families), ``partial`` (inpainted/outpainted) rows dropped.

Two training sets, each scored by logistic regression and by ``HistGradientBoostingClassifier`` (balanced classes,
threshold P(fake) = 0.5) on ``npr`` features (crop 224, phase_dft) and, if the ``periodic`` extractor exists, on
``npr`` + ``periodic``:

* **without**: train reals vs modern fakes;
* **with**: the same plus ``--benign-copies`` randomly processed copies of every train real (``random_benign``),
  and one aligned self-made fake per train real (cascades and, with ``--zoo-models``, a decoder zoo trained on the
  train reals) with its real copy post-processed the same way (``make_selfmade_set``).

Printed: (a) the false-positive rate per benign chain on the *validation* reals put through every chain of
``BENIGN`` (a model trained on all trainval families), and (b) leave-one-family-out AUC on the modern families: the
held-out family's fakes against the clean validation reals, and against the processed ones, plus its TPR at 0.5.

Measured 2026-12-01 (npr+periodic, HGB, seed 0; ``--zoo-cache`` and ``--cache`` set; 34 min on a loaded 2-core
machine): pooled FPR at 0.5 on processed validation reals 0.286 without, 0.061 with benign reals only, 0.414 with
self-made fakes only, 0.095 with both; leave-one-family-out mean AUC against processed reals 0.870 / 0.935 /
0.760 / 0.901. Self-made cascades alone teach "up-sampled means fake", which an upscaled real photo also is.

    .venv/bin/python benchmarks/selfmade_study.py                        # everything (30+ min on 2 busy cores)
    .venv/bin/python benchmarks/selfmade_study.py --limit-reals 120 --limit-fakes 8 --zoo-models 0   # quick look
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from gendetect.augment import BENIGN, DecoderZoo, make_selfmade_set, random_benign, train_decoder_zoo
from gendetect.data.readers import read_records
from gendetect.features import EXTRACTORS, create_extractor

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CROP = 224  # inside the cnndetection picture (its frame leaks the label)


def _trainval(rec: object) -> bool:
    return (getattr(rec, "split", None) or "trainval").lower() == "trainval"


def load_reals(shared: Path, limit: int | None, seed: int) -> list[tuple[Image.Image, str]]:
    """(image, source) of every trainval real, cropped so no frame or caption is left, shuffled, ``limit`` kept."""
    out = []
    for rec in read_records(shared / "real-photos", layout="labels-csv", probe=False):
        if rec.label == "real" and _trainval(rec):
            out.append((Image.open(rec.path).convert("RGB"), "real-photos"))
    for rec in read_records(shared / "cnndetection-gallery", layout="labels-csv", probe=False):
        if rec.label == "real":
            im = Image.open(rec.path).convert("RGB")
            w, h = im.size
            left, top = (w - CROP) // 2, (h - CROP) // 2
            out.append((im.crop((left, top, left + CROP, top + CROP)), "cnndetection"))
    for rec in read_records(shared / "wright-photos", layout="labels-csv", probe=False):
        if rec.label == "real" and (rec.split or "").lower() == "trainval":
            out.append((Image.open(rec.path).convert("RGB").crop((0, 0, 1024, 768)), "wright"))
    order = np.random.default_rng(seed).permutation(len(out))
    out = [out[i] for i in order]
    return out[:limit] if limit else out


def load_fakes(shared: Path, limit_per_family: int | None) -> list[tuple[Image.Image, str]]:
    """(image, family) of the modern-fakes trainval rows without inpainted/outpainted content."""
    per: dict[str, list] = defaultdict(list)
    for rec in read_records(shared / "modern-fakes", layout="labels-csv", probe=False):
        if rec.label != "fake" or (rec.split or "").lower() != "trainval" or str(rec.extra.get("partial")) == "1":
            continue
        fam = rec.source or rec.generator or "unknown"
        if limit_per_family is None or len(per[fam]) < limit_per_family:
            per[fam].append((Image.open(rec.path).convert("RGB"), fam))
    return [x for fam in sorted(per) for x in per[fam]]


class Featurizer:
    """npr (and periodic, when registered) features of a list of images, as named blocks."""

    def __init__(self) -> None:
        self.extractors = {"npr": create_extractor("npr", crop=CROP, n_crops=5, phase_dft=True)}
        if "periodic" in EXTRACTORS:
            self.extractors["periodic"] = create_extractor("periodic", crop=CROP, n_crops=5)

    def __call__(self, images: list[Image.Image]) -> dict[str, np.ndarray]:
        return {n: np.stack([e.extract_one(im) for im in images]) for n, e in self.extractors.items()}

    def sets(self) -> dict[str, list[str]]:
        out = {"npr": ["npr"]}
        if "periodic" in self.extractors:
            out["npr+periodic"] = ["npr", "periodic"]
        return out


def _classifier(kind: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced"))
    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, class_weight="balanced", random_state=seed)


def _auc(neg: np.ndarray, pos: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))


def _load_cache(path: Path | None, key: str) -> dict[str, dict[str, np.ndarray]] | None:
    if path is None or not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["__key__"]) != key:
            print(f"{path} was made with other options; recomputing", file=sys.stderr)
            return None
        blocks: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
        for name in z.files:
            if name != "__key__":
                block, _, part = name.rpartition("::")
                blocks[block][part] = z[name]
    return dict(blocks)


def _save_cache(path: Path | None, key: str, blocks: dict[str, dict[str, np.ndarray]]) -> None:
    if path is not None:
        flat = {f"{b}::{p}": a for b, parts in blocks.items() for p, a in parts.items()}
        np.savez(path, __key__=np.array(key), **flat)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--limit-reals", type=int, default=None, help="reals used in all (half train, half validation)")
    ap.add_argument("--limit-fakes", type=int, default=None, help="fakes kept per modern family")
    ap.add_argument("--benign-copies", type=int, default=2, help="processed copies per train real (with)")
    ap.add_argument("--zoo-models", type=int, default=4, help="decoder zoo members (0: cascades only)")
    ap.add_argument("--zoo-steps", type=int, default=200)
    ap.add_argument("--zoo-cache", type=Path, default=None, help="folder to load the zoo from, or save it to")
    ap.add_argument("--classifiers", nargs="+", default=["logistic", "hgb"], choices=["logistic", "hgb"])
    ap.add_argument(
        "--configs",
        nargs="+",
        default=["without", "benign", "selfmade", "with"],
        choices=["without", "benign", "selfmade", "with"],
        help="training sets compared",
    )
    ap.add_argument("--feature-sets", nargs="+", default=None, help="npr and/or npr+periodic (default: both)")
    ap.add_argument("--cache", type=Path, default=None, help=".npz of the features, reused when the options match")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.data.is_dir():
        print(f"no shared data at {args.data}", file=sys.stderr)
        return 2
    t0 = time.time()
    reals = load_reals(args.data, args.limit_reals, args.seed)
    fakes = load_fakes(args.data, args.limit_fakes)
    half = len(reals) // 2
    train_reals, val_reals = [im for im, _ in reals[:half]], [im for im, _ in reals[half:]]
    families = np.array([f for _, f in fakes])
    print(
        f"reals: {len(train_reals)} train, {len(val_reals)} validation; fakes: {len(fakes)} in "
        f"{len(set(families))} families ({time.time() - t0:.0f}s)"
    )

    feat = Featurizer()
    chains = [c for c in BENIGN.list() if c != "none"]
    key = json.dumps(
        {
            k: str(v)
            for k, v in sorted(vars(args).items())
            if k not in ("classifiers", "configs", "cache", "feature_sets")
        }
    )
    blocks = _load_cache(args.cache, key)
    if blocks is None:
        blocks = {"train_real": feat(train_reals), "val_real": feat(val_reals), "fake": feat([im for im, _ in fakes])}
        for c in chains:
            chain = BENIGN.create(c)
            blocks[f"chain/{c}"] = feat([chain(im, seed=args.seed * 100003 + i) for i, im in enumerate(val_reals)])
        print(
            f"features of reals, fakes and {len(chains)} chains x {len(val_reals)} validation reals "
            f"({time.time() - t0:.0f}s)"
        )
        processed = [
            random_benign(im, seed=args.seed * 7919 + 31 * i + j)[0]
            for i, im in enumerate(train_reals)
            for j in range(args.benign_copies)
        ]
        zoo = None
        if args.zoo_models:
            if args.zoo_cache and (args.zoo_cache / "config.json").is_file():
                zoo = DecoderZoo.load(args.zoo_cache)
            else:
                zoo = train_decoder_zoo(train_reals, n_models=args.zoo_models, seed=args.seed, steps=args.zoo_steps)
                if args.zoo_cache:
                    zoo.save(args.zoo_cache)
        selfmade = make_selfmade_set(train_reals, seed=args.seed, zoo=zoo)
        blocks["processed"] = feat(processed)
        blocks["selfmade"] = feat([s.image for s in selfmade])
        blocks["selfmade_y"] = {"y": np.array([s.label == "fake" for s in selfmade], int)[:, None]}
        methods = sorted({s.generator.split(":")[1] for s in selfmade if s.label == "fake"})
        print(
            f"{len(processed)} processed reals, {len(selfmade) // 2} self-made pairs ({', '.join(methods)}) "
            f"({time.time() - t0:.0f}s)"
        )
        _save_cache(args.cache, key, blocks)
    y_self = blocks["selfmade_y"]["y"][:, 0]

    def stack(name: str, names: list[str]) -> np.ndarray:
        return np.concatenate([blocks[name][n] for n in names], axis=1)

    n_val = len(val_reals)
    for set_name, names in feat.sets().items():
        if args.feature_sets and set_name not in args.feature_sets:
            continue
        Xr, Xf, Xp, Xs, Xv = (stack(b, names) for b in ("train_real", "fake", "processed", "selfmade", "val_real"))
        Xc = {c: stack(f"chain/{c}", names) for c in chains}
        Xv_proc = np.concatenate(list(Xc.values()))
        zeros = np.zeros
        all_configs = {
            "without": (Xr, zeros(len(Xr), int)),
            "benign": (np.r_[Xr, Xp], zeros(len(Xr) + len(Xp), int)),
            "selfmade": (np.r_[Xr, Xs], np.r_[zeros(len(Xr), int), y_self]),
            "with": (np.r_[Xr, Xp, Xs], np.r_[zeros(len(Xr) + len(Xp), int), y_self]),
        }
        configs = {k: all_configs[k] for k in args.configs}
        for clf_name in args.classifiers:
            print(f"\n=== features {set_name}, {clf_name}; training extras: {' | '.join(configs)} ===")
            fpr: dict[str, dict[str, float]] = {}
            lofo: dict[str, dict[str, tuple]] = {}
            for cfg_name, (X_extra, y_extra) in configs.items():
                clf = _classifier(clf_name, args.seed).fit(np.r_[X_extra, Xf], np.r_[y_extra, np.ones(len(Xf), int)])
                clean = clf.predict_proba(Xv)[:, 1]
                t_clean = float(np.quantile(clean, 0.99))  # the threshold unprocessed reals alone would set
                fpr[cfg_name] = {"none": float((clean > 0.5).mean())}
                proc = {c: clf.predict_proba(Xc[c])[:, 1] for c in chains}
                for c in chains:
                    fpr[cfg_name][c] = float((proc[c] > 0.5).mean())
                fpr[cfg_name]["@t1%clean"] = float((np.concatenate(list(proc.values())) > t_clean).mean())
                lofo[cfg_name] = {}
                for fam in sorted(set(families)):
                    keep = families != fam
                    m = _classifier(clf_name, args.seed).fit(
                        np.r_[X_extra, Xf[keep]], np.r_[y_extra, np.ones(int(keep.sum()), int)]
                    )
                    pos = m.predict_proba(Xf[~keep])[:, 1]
                    neg_clean, neg_proc = m.predict_proba(Xv)[:, 1], m.predict_proba(Xv_proc)[:, 1]
                    t1 = float(np.quantile(np.r_[neg_clean, neg_proc], 0.99))
                    lofo[cfg_name][fam] = (
                        _auc(neg_clean, pos),
                        _auc(neg_proc, pos),
                        float((pos > 0.5).mean()),
                        float((pos > t1).mean()),
                        int((~keep).sum()),
                    )
            cols = list(configs)
            head = " ".join(f"{c:>14s}" for c in cols)
            print(
                f"(a) false-positive rate at P(fake) > 0.5 on {n_val} validation reals, per chain\n  {'chain':24s}{head}"
            )
            for c in ["none", *chains]:
                print(f"  {c:24s}" + " ".join(f"{fpr[k][c]:7.3f} ({round(fpr[k][c] * n_val):4d})" for k in cols))
            pooled = {k: float(np.mean([fpr[k][c] for c in chains])) for k in cols}
            print(f"  {'all processed (pooled)':24s}" + " ".join(f"{pooled[k]:14.3f}" for k in cols))
            print(
                f"  {'chains with FPR > 1%':24s}"
                + " ".join(f"{sum(fpr[k][c] > 0.01 for c in chains):11d}/{len(chains)}" for k in cols)
            )
            print(f"  {'pooled @ 1% clean thr.':24s}" + " ".join(f"{fpr[k]['@t1%clean']:14.3f}" for k in cols))
            print(
                "(b) leave-one-family-out per held-out family, per training set: AUC vs clean val reals / AUC vs "
                "processed val reals / TPR at 0.5 / TPR at 1% FPR on all val reals"
            )
            print(f"  {'family':14s}{'n':>4s}  " + "  ".join(f"{k:^23s}" for k in cols))
            for fam in sorted(set(families)):
                row = "  ".join("{:.2f}/{:.2f}/{:.2f}/{:.2f}    ".format(*lofo[k][fam][:4]) for k in cols)
                print(f"  {fam:14s}{lofo[cols[0]][fam][4]:4d}  {row}")
            means = {k: np.mean([v[:4] for v in lofo[k].values()], axis=0) for k in cols}
            print(f"  {'mean':14s}{'':4s}  " + "  ".join("{:.3f}/{:.3f}/{:.2f}/{:.2f}".format(*means[k]) for k in cols))
    print(f"\ntotal {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
