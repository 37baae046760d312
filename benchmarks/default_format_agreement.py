"""PNG-vs-JPEG agreement of a model: the same pixels as PNG and as JPEG q95 should get the same verdict.

Reads the lossless trainval images the default-model script samples for its card (``real-photos`` and
``modern-fakes`` PNGs, never test rows: ``scripts/train_default.py``'s ``agreement_images``), scores each as a PNG
and as a JPEG q95 copy, and prints the mean and largest |P(fake) difference| and the share of equal verdicts. With
the defaults it reproduces the card's figures for the embedded model.

    python benchmarks/default_format_agreement.py [--model DIR] [-n 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train_default as td  # the card's sample of lossless trainval images

from gendetect.evaluation.agreement import format_agreement
from gendetect.pipeline import load_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", default=None)
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quality", type=int, default=95)
    args = ap.parse_args(argv)
    if not args.shared.is_dir():
        print(f"{args.shared} not found: the benchmark reads ../shared/data", file=sys.stderr)
        return 2
    model = load_model(args.model)
    images = td.agreement_images(td.collect(args.shared), args.seed, n=args.n)
    r = format_agreement(model, images, quality=args.quality)
    print(f"model {model.name}: {r['n']} lossless trainval images, PNG vs JPEG q{args.quality}")
    print(f"mean |dP| {r['mean_abs_dp']:.4f}, max |dP| {r['max_abs_dp']:.4f}, same verdict {r['same_verdict']:.3f}")
    print(f"verdict changes: {r['flips'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
