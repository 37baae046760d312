"""PNG-vs-JPEG agreement of a model: the same pixels as PNG and as JPEG q95 should get the same verdict.

Reads lossless trainval images (``real-photos`` and ``modern-fakes`` PNGs; never test rows), scores each as a PNG
and as a JPEG q95 copy, and prints the mean and largest |P(fake) difference| and the share of equal verdicts.

    python benchmarks/default_format_agreement.py [--model DIR] [-n 60]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from gendetect.data.readers import read_records
from gendetect.imageio import load_image
from gendetect.pipeline import load_model

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", default=None)
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--quality", type=int, default=95)
    args = ap.parse_args(argv)
    model = load_model(args.model)
    recs = [
        r
        for folder in ("real-photos", "modern-fakes")
        for r in read_records(args.shared / folder, layout="labels-csv", probe=False)
        if (r.split or "trainval") == "trainval" and r.path.lower().endswith(".png")
    ]
    rng = np.random.default_rng(0)
    recs = [recs[i] for i in rng.choice(len(recs), size=min(args.n, len(recs)), replace=False)]
    diffs, same = [], []
    for r in recs:
        image = load_image(r.path)
        copies = []
        for fmt in ("PNG", "JPEG"):
            buf = io.BytesIO()
            image.save(buf, fmt, **({"quality": args.quality} if fmt == "JPEG" else {}))
            copies.append(load_image(buf.getvalue()))
        p_png, p_jpg = model.predict_proba(copies)
        v = [("uncertain" if np.isnan(p) else model.verdict(p)) for p in (p_png, p_jpg)]
        same.append(v[0] == v[1])
        if np.isfinite(p_png) and np.isfinite(p_jpg):
            diffs.append(abs(p_png - p_jpg))
    d = np.asarray(diffs)
    print(f"model {model.name}: {len(recs)} lossless trainval images, PNG vs JPEG q{args.quality}")
    print(f"mean |dP| {d.mean():.4f}, max |dP| {d.max():.4f}, same verdict {np.mean(same):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
