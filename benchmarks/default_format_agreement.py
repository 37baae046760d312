"""PNG-vs-JPEG agreement of a model: the same pixels as PNG and as JPEG q95 should get the same verdict.

Reads lossless trainval images (``real-photos`` and ``modern-fakes`` PNGs; never test rows), scores each as a PNG
and as a JPEG q95 copy, and prints the mean and largest |P(fake) difference| and the share of equal verdicts.

    python benchmarks/default_format_agreement.py [--model DIR] [-n 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from gendetect.data.readers import read_records
from gendetect.evaluation.agreement import format_agreement
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
    r = format_agreement(model, (load_image(rec.path) for rec in recs), quality=args.quality)
    print(f"model {model.name}: {r['n']} lossless trainval images, PNG vs JPEG q{args.quality}")
    print(f"mean |dP| {r['mean_abs_dp']:.4f}, max |dP| {r['max_abs_dp']:.4f}, same verdict {r['same_verdict']:.3f}")
    print(f"verdict changes: {r['flips'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
