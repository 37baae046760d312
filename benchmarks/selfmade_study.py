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

    .venv/bin/python benchmarks/selfmade_study.py                        # everything, a few minutes on 2 cores
    .venv/bin/python benchmarks/selfmade_study.py --limit-reals 120 --limit-fakes 8 --zoo-models 0   # quick look
"""

from __future__ import annotations

import argparse
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
    F_train_real = feat(train_reals)
    F_val_real = feat(val_reals)
    F_fake = feat([im for im, _ in fakes])
    chains = [c for c in BENIGN.list() if c != "none"]
    F_val_chain = {}
    for c in chains:
        chain = BENIGN.create(c)
        F_val_chain[c] = feat([chain(im, seed=args.seed * 100003 + i) for i, im in enumerate(val_reals)])
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
    F_proc = feat(processed)
    F_self = feat([s.image for s in selfmade])
    y_self = np.array([s.label == "fake" for s in selfmade], int)
    print(
        f"with: {len(processed)} processed reals, {len(selfmade) // 2} self-made pairs "
        f"({', '.join(sorted({s.generator.split(':')[1] for s in selfmade if s.label == 'fake'}))}) "
        f"({time.time() - t0:.0f}s)"
    )

    def stack(blocks: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
        return np.concatenate([blocks[n] for n in names], axis=1)

    for set_name, names in feat.sets().items():
        Xr, Xf, Xp, Xs = (stack(b, names) for b in (F_train_real, F_fake, F_proc, F_self))
        Xv = stack(F_val_real, names)
        Xc = {c: stack(F_val_chain[c], names) for c in chains}
        Xv_proc = np.concatenate(list(Xc.values()))
        configs = {
            "without": (np.r_[Xr], np.zeros(len(Xr), int)),
            "with": (np.r_[Xr, Xp, Xs], np.r_[np.zeros(len(Xr) + len(Xp), int), y_self]),
        }
        for clf_name in args.classifiers:
            print(f"\n=== features {set_name}, {clf_name} (threshold P(fake) 0.5) ===")
            fpr: dict[str, dict[str, float]] = {}
            lofo: dict[str, dict[str, tuple]] = {}
            for cfg_name, (X_extra, y_extra) in configs.items():
                X = np.r_[X_extra, Xf]
                y = np.r_[y_extra, np.ones(len(Xf), int)]
                clf = _classifier(clf_name, args.seed).fit(X, y)
                fpr[cfg_name] = {"none": float((clf.predict_proba(Xv)[:, 1] > 0.5).mean())}
                for c in chains:
                    fpr[cfg_name][c] = float((clf.predict_proba(Xc[c])[:, 1] > 0.5).mean())
                lofo[cfg_name] = {}
                for fam in sorted(set(families)):
                    keep = families != fam
                    m = _classifier(clf_name, args.seed).fit(
                        np.r_[X_extra, Xf[keep]], np.r_[y_extra, np.ones(int(keep.sum()), int)]
                    )
                    pos = m.predict_proba(Xf[~keep])[:, 1]
                    lofo[cfg_name][fam] = (
                        _auc(m.predict_proba(Xv)[:, 1], pos),
                        _auc(m.predict_proba(Xv_proc)[:, 1], pos),
                        float((pos > 0.5).mean()),
                        int((~keep).sum()),
                    )
            n_val = len(val_reals)
            print(f"(a) false-positive rate per chain on {n_val} validation reals: without -> with")
            for c in ["none", *chains]:
                a, b = fpr["without"][c], fpr["with"][c]
                print(f"  {c:24s} {a:6.3f} ({round(a * n_val):3d}/{n_val}) -> {b:6.3f} ({round(b * n_val):3d}/{n_val})")
            pooled = {k: float(np.mean([v[c] for c in chains])) for k, v in fpr.items()}
            over = {k: sum(v[c] > 0.01 for c in chains) for k, v in fpr.items()}
            print(
                f"  {'all processed (pooled)':24s} {pooled['without']:6.3f} -> {pooled['with']:6.3f};"
                f" chains above 1%: {over['without']} -> {over['with']} of {len(chains)}"
            )
            print(
                "(b) leave-one-family-out: AUC vs clean val reals | AUC vs processed val reals | TPR@0.5, without -> with"
            )
            for fam in sorted(set(families)):
                a, b = lofo["without"][fam], lofo["with"][fam]
                print(
                    f"  {fam:16s} n={a[3]:3d}  AUC {a[0]:.3f} -> {b[0]:.3f} | AUC-proc {a[1]:.3f} -> {b[1]:.3f}"
                    f" | TPR {a[2]:.2f} -> {b[2]:.2f}"
                )
            means = {k: np.mean([v[f][:3] for f in v], axis=0) for k, v in lofo.items()}
            print(
                f"  {'mean':16s}        AUC {means['without'][0]:.3f} -> {means['with'][0]:.3f} | AUC-proc "
                f"{means['without'][1]:.3f} -> {means['with'][1]:.3f} | TPR {means['without'][2]:.2f} -> "
                f"{means['with'][2]:.2f}"
            )
    print(f"\ntotal {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
