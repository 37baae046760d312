"""False-match rate of every evidence check on real photos, and the watermark's survival table.

Usage::

    python benchmarks/evidence_false_match.py [--data ../shared/data] [--carriers 40] [--json out.json]

1. **False matches.** Every real photo of ``real-photos/``, the reals of ``cnndetection-gallery/`` and of
   ``wright-photos/`` is run through every check; a *false match* is a finding that points to a generated image
   (``indicates == "fake"``). The lowest watermark bit-error rate seen on any real photo is printed next to each
   message's match threshold (``MATCH_BER``), to show the margin.
2. **Survival.** Real photos of at least 256x256 pixels are watermarked with ``invisible-watermark`` exactly as the
   reference code does (SD v1: bytes on a BGR uint8 array; SDXL: bits on a float32 array, RGB as diffusers does and
   BGR as generative-models does), then saved as PNG, JPEG q90 / q75, or resized; the table gives the share still
   matched and the median BER.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from gendetect.evidence import DEFAULT_CHECKS, collect
from gendetect.evidence.watermark import MATCH_BER, MIN_PIXELS, SDXL_MESSAGE, WATERMARKS, decode, int_to_bits

ROOT = Path(__file__).resolve().parents[1]


def real_files(data: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for folder in ("real-photos", "cnndetection-gallery", "wright-photos"):
        labels = data / folder / "labels.csv"
        if not labels.is_file():
            continue
        with labels.open(newline="") as f:
            out[folder] = [data / folder / r["file"] for r in csv.DictReader(f) if r["label"] == "real"]
    return out


def false_matches(files: dict[str, list[Path]]) -> dict:
    per_check: Counter = Counter()
    any_finding: Counter = Counter()
    skipped: Counter = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    min_ber = {name: 1.0 for name in WATERMARKS}
    n = 0
    t0 = time.perf_counter()
    for paths in files.values():
        for p in paths:
            n += 1
            report = collect(p)
            for check in {f.check for f in report.findings}:
                any_finding[check] += 1
            for f in report.findings:
                if f.indicates == "fake":
                    per_check[f.check] += 1
                    if len(examples[f.check]) < 5:
                        examples[f.check].append(f"{p.name}: {f.summary}")
            for name in report.skipped:
                skipped[name] += 1
            rgb = np.asarray(Image.open(p).convert("RGB"))
            if rgb.shape[0] * rgb.shape[1] >= MIN_PIXELS:
                for d in decode(rgb):
                    min_ber[d.watermark] = min(min_ber[d.watermark], d.ber)
    return {
        "n_real": n,
        "seconds_per_image": (time.perf_counter() - t0) / max(n, 1),
        "false_matches": {c: per_check.get(c, 0) for c in DEFAULT_CHECKS},
        "skipped": dict(skipped),
        "any_finding": {c: any_finding.get(c, 0) for c in DEFAULT_CHECKS},
        "examples": dict(examples),
        "min_ber_on_reals": min_ber,
    }


def embed(rgb: np.ndarray, style: str) -> np.ndarray:
    """Watermark an RGB uint8 array the way the reference code does; returns RGB uint8."""
    from imwatermark import WatermarkEncoder

    enc = WatermarkEncoder()
    if style == "sd1":  # CompVis txt2img.put_watermark: RGB -> BGR uint8, encode, back
        enc.set_watermark("bytes", b"StableDiffusionV1")
        return enc.encode(np.ascontiguousarray(rgb[..., ::-1]), "dwtDct")[..., ::-1]
    enc.set_watermark("bits", list(int_to_bits(SDXL_MESSAGE)))
    if style == "sdxl-diffusers":  # StableDiffusionXLWatermarker: float RGB array passed as is
        out = enc.encode(rgb.astype(np.float32), "dwtDct")
    else:  # generative-models WatermarkEmbedder: float, flipped to BGR and back
        out = enc.encode(np.ascontiguousarray(rgb[..., ::-1].astype(np.float32)), "dwtDct")[..., ::-1]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def transform(rgb: np.ndarray, name: str) -> np.ndarray:
    im = Image.fromarray(rgb)
    buf = io.BytesIO()
    if name == "png":
        im.save(buf, "PNG")
    elif name.startswith("jpeg"):
        im.save(buf, "JPEG", quality=int(name[4:]))
    elif name.startswith("resize"):
        s = float(name[6:])
        im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC).save(buf, "PNG")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


STYLES = {"sd1": "sd1", "sdxl-diffusers": "sdxl", "sdxl-sgm": "sdxl"}
TRANSFORMS = ("png", "jpeg95", "jpeg90", "jpeg75", "resize0.75", "resize0.5", "resize1.5")


def survival(carriers: list[Path]) -> dict:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for style, wm in STYLES.items():
        table[style] = {}
        marked = []
        for p in carriers:
            rgb = np.asarray(Image.open(p).convert("RGB"))
            if "wright-photos" in str(p):
                rgb = rgb[:768]  # the photo; the caption panel below is a leak and flat black
            marked.append(embed(np.ascontiguousarray(rgb), style))
        for t in TRANSFORMS:
            bers, hits = [], 0
            for m in marked:
                out = transform(m, t)
                if out.shape[0] * out.shape[1] < MIN_PIXELS:
                    continue
                d = next(d for d in decode(out) if d.watermark == wm)
                bers.append(d.ber)
                hits += d.ber <= MATCH_BER[wm]
            table[style][t] = {
                "n": len(bers),
                "matched": hits / max(len(bers), 1),
                "median_ber": float(np.median(bers)) if bers else float("nan"),
            }
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--carriers", type=int, default=40, help="real photos watermarked for the survival table")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    files = real_files(args.data)
    if not files:
        print(f"no labelled reals under {args.data}", file=sys.stderr)
        return 1
    fm = false_matches(files)
    print(
        f"False matches on {fm['n_real']} real photos ({', '.join(f'{k} {len(v)}' for k, v in files.items())}); "
        f"{fm['seconds_per_image'] * 1000:.0f} ms per image for all checks"
    )
    for check in DEFAULT_CHECKS:
        k = fm["false_matches"][check]
        skipped = fm["skipped"].get(check, 0)
        print(
            f"  {check:11} {k:4d} / {fm['n_real']}  = {k / fm['n_real']:.4f}   (any finding on {fm['any_finding'][check]},"
            f" skipped on {skipped})"
        )
        for ex in fm["examples"].get(check, []):
            print(f"      e.g. {ex}")
    print("Lowest watermark BER on any real photo (match needs BER <= threshold):")
    for name, ber in fm["min_ber_on_reals"].items():
        print(f"  {name:5} {len(WATERMARKS[name].bits):4d} bits  lowest {ber:.3f}  threshold {MATCH_BER[name]}")

    # carriers large enough that a half-size copy still has 256x256 pixels: the wright-photos reals (top 1024x768
    # photo region of each card) and the provenance examples (their content does not matter for a watermark)
    big = [p for ps in files.values() for p in ps if min(Image.open(p).size) >= 512]
    big += sorted((args.data / "provenance-examples").glob("*/*.png"))
    big = [p for p in big if min(Image.open(p).size) >= 512]
    carriers = big[:: max(1, len(big) // args.carriers)][: args.carriers]
    surv = survival(carriers)
    print(f"\nWatermark survival ({len(carriers)} real photos watermarked; share matched, median BER):")
    print(f"  {'embedded as':16}" + "".join(f"{t:>16}" for t in TRANSFORMS))
    for style, row in surv.items():
        print(f"  {style:16}" + "".join(f"{row[t]['matched']:>8.0%} ({row[t]['median_ber']:.2f})" for t in TRANSFORMS))
    if args.json:
        args.json.write_text(json.dumps({"false_match": fm, "survival": surv}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
