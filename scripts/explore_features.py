"""Compare forensic extractors on the training data by leave-one-generator-out (LOGO) AUC.

Protocol (training data only: ``wright-photos`` rows with ``split == "test"`` and ``diffusion-examples/`` are never
read):

* **Data**: every ``cnndetection-gallery/*`` row and the ``trainval`` rows of ``wright-photos/``. Each gallery
  generator is one source (its 20 fakes and the 20 reals collected with them); ``wright-photos`` is the source
  ``wright`` with its own reals.
* **LOGO**: for each source, ``StandardScaler`` + ``LogisticRegression`` is fitted on all *other* sources (real and
  fake) and scores the held-out source's fakes against its reals. Printed: AUC per held-out source and the mean.
* **Speed**: extraction images/s over the training images and on one 512 x 512 image, in one process.
* **Format confound**: a model fitted on all training images scores each image re-encoded in memory as PNG and as
  JPEG q95; printed is the mean (and max) |P(fake | PNG) - P(fake | JPEG q95)|. The training images are JPEGs
  already, so re-encoding them barely changes their JPEG traces; the check is repeated on "pristine" images
  without JPEG traces (the ``trainval`` wright photos reduced 3x by box averaging, and scikit-image's PNG photos),
  which is what a PNG from a generator looks like. A large value means the features see the container.

Usage::

    .venv/bin/python scripts/explore_features.py
    .venv/bin/python scripts/explore_features.py --extractor 'npr {"crop": 224, "T": 3}' --C 0.01 0.1
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gendetect.data.readers import read_records
from gendetect.features import create_extractor
from gendetect.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]
# Every cnndetection-gallery picture is ~256 px inside a 356 px frame whose colour gives the label away: crops of
# 224 px stay inside the picture (see the default model's MODEL_CARD.md).
DEFAULT_SPECS = [
    'spectrum {"crop": 224}',
    'npr {"crop": 224}',
    'npr {"crop": 224, "phase_dft": true}',
    'saturation {"crop": 224}',
    'forensic {"crop": 224, "parts": ["npr", "saturation"]}',
    'forensic {"crop": 224, "parts": ["npr", "saturation"], "part_params": {"npr": {"phase_dft": true}}}',
    'forensic {"crop": 224, "part_params": {"npr": {"phase_dft": true}}}',
]
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")


def training_set(shared: Path) -> tuple[list[Image.Image], np.ndarray, np.ndarray]:
    """Decoded training images, labels (1 = fake) and source names. Test rows are dropped before decoding."""
    gallery = read_records(shared / "cnndetection-gallery")
    wright = [r for r in read_records(shared / "wright-photos") if (r.split or "").lower() == "trainval"]
    records = [r for r in gallery + wright if r.label in ("real", "fake") and r.status == "ok"]
    images = [load_image(r.path) for r in records]
    y = np.array([r.label == "fake" for r in records], dtype=np.int64)
    sources = np.array(["wright" if "wright" in str(r.source) else str(r.source).split("/")[-1] for r in records])
    return images, y, sources


def pristine_images(images: list[Image.Image], sources: np.ndarray) -> list[Image.Image]:
    """Images without JPEG traces: the large training photos reduced 3x (box), and scikit-image's photos."""
    out = [im.reduce(3) for im, s in zip(images, sources) if s == "wright"]
    try:
        from skimage import data

        out += [Image.fromarray(getattr(data, name)()).convert("RGB") for name in SKIMAGE_PHOTOS]
    except ImportError:
        pass
    return out


def parse_spec(spec: str) -> tuple[str, dict]:
    name, _, params = spec.strip().partition(" ")
    return name, json.loads(params) if params.strip() else {}


def classifier(C: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, class_weight="balanced"))


def logo_auc(X: np.ndarray, y: np.ndarray, sources: np.ndarray, C: float) -> dict[str, float]:
    """AUC on each held-out source of a classifier fitted on all the others."""
    out = {}
    for src in sorted(set(sources)):
        test = sources == src
        clf = classifier(C).fit(X[~test], y[~test])
        out[src] = float(roc_auc_score(y[test], clf.predict_proba(X[test])[:, 1]))
    return out


def reencode(image: Image.Image, fmt: str) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return load_image(buf.getvalue())


def format_gap(ext, clf, images: list[Image.Image]) -> dict[str, float]:
    """|P(fake | PNG) - P(fake | JPEG q95)| of the same pixels, mean and max, and the mean signed shift."""
    png = np.stack([ext.extract_one(reencode(im, "PNG")) for im in images])
    jpg = np.stack([ext.extract_one(reencode(im, "JPEG")) for im in images])
    p_png, p_jpg = clf.predict_proba(png)[:, 1], clf.predict_proba(jpg)[:, 1]
    d = p_jpg - p_png
    return {"n": len(images), "mean": float(np.abs(d).mean()), "max": float(np.abs(d).max()), "shift": float(d.mean())}


def speed_512(ext, seconds: float = 1.0) -> float:
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), np.uint8))
    ext.extract_one(im)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        ext.extract_one(im)
        n += 1
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--extractor", action="append", help="'name {json params}' (repeatable)")
    parser.add_argument("--C", type=float, nargs="+", default=[0.01], help="logistic regression C values")
    parser.add_argument("--format-n", type=int, default=120, help="training images in the format check (0: skip)")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        print(f"{args.shared} not found: this script needs ../shared/data", file=sys.stderr)
        return 2

    images, y, sources = training_set(args.shared)
    print(f"{len(images)} training images ({int(y.sum())} fake); sources: {', '.join(sorted(set(sources)))}")
    chosen = np.random.default_rng(0).choice(len(images), size=min(args.format_n, len(images)), replace=False)
    pristine = pristine_images(images, sources) if args.format_n else []
    rows = []
    for spec in args.extractor or DEFAULT_SPECS:
        name, params = parse_spec(spec)
        ext = create_extractor(name, **params)
        t0 = time.perf_counter()
        X = np.stack([ext.extract_one(im) for im in images])
        rate = len(images) / (time.perf_counter() - t0)
        r512 = speed_512(ext)
        print(f"\n== {spec}  dim={ext.dim}  {rate:.0f} img/s on the training images, {r512:.0f} img/s at 512 px")
        for C in args.C:
            logo = logo_auc(X, y, sources, C)
            mean = float(np.mean(list(logo.values())))
            print(f"  C={C:g}: LOGO mean AUC {mean:.3f} | " + "  ".join(f"{s}={a:.2f}" for s, a in logo.items()))
            gap = gap_p = {"mean": float("nan"), "max": float("nan"), "shift": float("nan")}
            if args.format_n:
                clf = classifier(C).fit(X, y)
                gap = format_gap(ext, clf, [images[i] for i in chosen])
                gap_p = format_gap(ext, clf, pristine)
                print(
                    f"  |P(PNG) - P(JPEG q95)|: training images mean {gap['mean']:.4f} max {gap['max']:.4f}; "
                    f"pristine images (n={gap_p['n']}) mean {gap_p['mean']:.4f} max {gap_p['max']:.4f} "
                    f"(JPEG - PNG shift {gap_p['shift']:+.4f})"
                )
            rows.append((spec, ext.dim, C, mean, logo, gap, gap_p, rate, r512))

    print("\n| extractor | dim | C | LOGO AUC | dP PNG-JPEG train | dP pristine (max) | img/s train | img/s 512 |")
    print("|---|---|---|---|---|---|---|---|")
    for spec, dim, C, mean, _, gap, gap_p, rate, r512 in rows:
        print(
            f"| {spec} | {dim} | {C:g} | {mean:.3f} | {gap['mean']:.4f} | {gap_p['mean']:.4f} ({gap_p['max']:.3f}) "
            f"| {rate:.0f} | {r512:.0f} |"
        )
    srcs = sorted(rows[0][4]) if rows else []
    print("\n| extractor | C | " + " | ".join(srcs) + " | mean |")
    print("|---|---|" + "---|" * (len(srcs) + 1))
    for spec, _, C, mean, logo, *_ in rows:
        print(f"| {spec} | {C:g} | " + " | ".join(f"{logo[s]:.2f}" for s in srcs) + f" | {mean:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
