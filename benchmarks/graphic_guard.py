"""What the text-and-graphics check of the tiled extractor (``graphic_check``) costs on photographs and
generated images, and what it catches.

The check (:func:`gendetect.features.periodic.tile_graphic`) was added after v8's build, whose card was measured
without it; v9 is trained and calibrated with it. This benchmark scores the validation originals (trainval rows,
in the regions the model is trained on; never test rows) with the check on and off, with the same model, and
prints how many tiles it removes per class and how many verdicts change. Then it renders text pages and charts,
saves them as PNG and as JPEG at several qualities (with and without a 2x nearest up-scale) and prints their
verdicts on and off: without the check, JPEG ringing hid the flat paper from the flat-pixel test and text was
scored.

    python benchmarks/graphic_guard.py [--model DIR] [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import train_default as td  # the validation items and their training regions

from gendetect.pipeline import load_model


def documents() -> dict[str, Image.Image]:
    """Rendered text pages, a code screenshot and a bar chart, at their native size."""
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 14)
    except OSError:
        font = ImageFont.load_default()
    out = {}
    page = Image.new("RGB", (900, 650), "white")
    d = ImageDraw.Draw(page)
    for i in range(32):
        d.text((15, 5 + i * 20), f"Invoice number {i} total amount due payable within thirty days", fill="black", font=font)
    out["text page"] = page
    code = Image.new("RGB", (1280, 800), (30, 30, 36))
    d = ImageDraw.Draw(code)
    for i in range(36):
        d.text((10 + (i % 3) * 30, 4 + i * 22), f"def function_{i}(x): return x * {i}  # comment", fill=(200, 200, 180),
               font=font)
    out["dark code screenshot"] = code
    chart = Image.new("RGB", (800, 600), "white")
    d = ImageDraw.Draw(chart)
    heights = np.random.default_rng(0).integers(50, 500, 12)
    for i, h in enumerate(heights):
        d.rectangle((40 + i * 60, 560 - int(h), 80 + i * 60, 560), fill=(200, 60, 60))
        d.text((40 + i * 60, 570), f"Q{i}", fill="black", font=font)
    out["bar chart"] = chart
    return out


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def verdicts(model, images: list[Image.Image]) -> tuple[list[str], list[int]]:
    """The verdict of each image and its count of tiles with signal."""
    out, signal = [], []
    for im in images:
        s = model.score_tiles(im)
        signal.append(int(s.signal.sum()))
        out.append("no signal" if s.p_image is None else f"{model.verdict(s.p_image)} {s.p_image:.2f}")
    return out, signal


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)
    on = load_model(args.model)
    off = load_model(args.model)
    if not getattr(on.extractor, "graphic_check", False):
        print("the model's extractor has no graphic check to compare", file=sys.stderr)
        return 2
    off.extractor.graphic_check = False
    print(f"model {on.name}; check: background share >= {on.extractor.graphic_background}, "
          f"marks >= {on.extractor.graphic_marks}")

    docs = documents()
    print("\nrendered documents (verdict with the check / without):")
    for name, im in docs.items():
        variants = {"PNG": im, **{f"JPEG q{q}": _jpeg(im, q) for q in (95, 75, 50)},
                    "2x nearest, JPEG q95": _jpeg(im.resize((im.width * 2, im.height * 2), Image.NEAREST), 95)}
        a, _ = verdicts(on, list(variants.values()))
        b, _ = verdicts(off, list(variants.values()))
        print(f"  {name:22s} " + "; ".join(f"{k}: {x} / {y}" for k, x, y in zip(variants, a, b)))

    if not args.shared.is_dir():
        print(f"\n{args.shared} not found: the validation part reads ../shared/data", file=sys.stderr)
        return 0
    args.shared = args.shared.resolve()  # the items' paths are absolute; a relative --shared must match them
    items = [it for it in td.collect(args.shared) if it.split == "trainval"]
    changes: dict[int, Counter] = {0: Counter(), 1: Counter()}
    tiles = {0: [0, 0], 1: [0, 0]}
    moved: list[str] = []
    for it in items:
        im = td.view_image(it.path, it.region, "none", 0)
        a, sa = verdicts(on, [im])
        b, sb = verdicts(off, [im])
        tiles[it.label][0] += sb[0]
        tiles[it.label][1] += sb[0] - sa[0]
        va, vb = (x if x == "no signal" else x.split()[0] for x in (a[0], b[0]))
        changes[it.label][f"{vb} -> {va}" if va != vb else "same"] += 1
        if va != vb:
            moved.append(f"{Path(it.path).relative_to(args.shared)} ({'fake' if it.label else 'real'}): {b[0]} -> {a[0]}")
    print(f"\nvalidation originals ({len(items)} trainval images, their training regions):")
    for y, name in ((0, "real"), (1, "fake")):
        n, dropped = tiles[y]
        print(f"  {name}: {dropped} of {n} tiles with signal removed ({dropped / max(n, 1):.1%}); verdicts "
              f"(without -> with the check): {dict(changes[y])}")
    for line in moved:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
