"""Train the embedded default detector and write its model card (``make default-model``).

Protocol, in order, so that test data never influences any choice:

1. **Training data**: ``cnndetection-gallery/`` (all rows) and the ``trainval`` rows of ``wright-photos/``.
2. **Model selection** on training data only: every candidate (extractor, detector) is scored by
   leave-one-source-out (train on the other sources, test on the held-out generator's fakes and its reals).
   Candidates whose P(fake) moves by more than 0.1 between PNG and JPEG q95 copies of photos without JPEG history
   (the wright trainval images shrunk 3x) are refused; of the rest, the simplest within 0.01 of the best mean AUC
   wins.
3. **Threshold**: out-of-fold P(fake) with folds that hold out whole sources; the lowest threshold with a
   false-positive rate on real validation images of at most 1%.
4. **Checks**: the same training images re-encoded as PNG and as JPEG q95 (and cropped/padded to other sizes)
   must score alike.
5. **Test once**: the chosen model on the test-only sets (``wright-photos`` split ``test``, ``diffusion-examples``).

Writes ``src/gendetect/models/default/{config.json, model.safetensors, MODEL_CARD.md}``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gendetect.data.readers import read_records
from gendetect.detectors import create_detector
from gendetect.evaluation.report import evaluate_pipeline
from gendetect.features import create_extractor
from gendetect.imageio import load_image
from gendetect.pipeline import DetectionPipeline
from gendetect.training import featurize, leave_one_source_out, targets, train_pipeline

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "gendetect" / "models" / "default"

# (extractor name, extractor params, detector name, detector params)
# Every cnndetection-gallery image is a ~256 px picture centred on a 356 px canvas inside a coloured frame: dark
# grey for reals, a generator-specific bright colour for fakes. Features of the whole canvas learn the frame, so
# every candidate works on 224 px crops, which lie inside the picture.
CROP = {"crop": 224}
TIE = 0.01
CANDIDATES: list[tuple[str, dict, str, dict]] = [
    ("spectrum", CROP, "logistic", {"C": 0.01}),
    ("npr", CROP, "logistic", {"C": 0.01}),
    ("saturation", CROP, "logistic", {"C": 0.1}),
    ("forensic", CROP, "logistic", {"C": 0.01}),
    ("forensic", CROP, "logistic", {"C": 0.1}),
    ("forensic", {**CROP, "parts": ["npr", "saturation"]}, "logistic", {"C": 0.01}),
    ("forensic", {**CROP, "parts": ["spectrum", "npr"]}, "logistic", {"C": 0.01}),
    ("npr", {**CROP, "phase_dft": True}, "logistic", {"C": 0.01}),
    (
        "forensic",
        {**CROP, "parts": ["npr", "saturation"], "part_params": {"npr": {"phase_dft": True}}},
        "logistic",
        {"C": 0.01},
    ),
    ("forensic", CROP, "knn", {"k": 5}),
    ("forensic", CROP, "mlp", {"alpha": 0.01}),  # most flexible last: it wins only by more than TIE
]


def training_records(shared: Path) -> list:
    gallery = read_records(shared / "cnndetection-gallery")
    wright = [r for r in read_records(shared / "wright-photos") if (r.split or "").lower() == "trainval"]
    return gallery + wright


def test_sets(shared: Path) -> dict[str, list]:
    return {
        "wright-photos (split test)": [
            r for r in read_records(shared / "wright-photos") if (r.split or "").lower() == "test"
        ],
        "diffusion-examples": read_records(shared / "diffusion-examples"),
    }


def _fmt(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


MAX_FORMAT_GAP = 0.1  # a candidate whose P(fake) moves more than this between PNG and JPEG q95 is refused


def pristine_images(records: list) -> list[Image.Image]:
    """Photos without JPEG history, for the format check: the wright trainval reals and fakes shrunk 3x by box
    averaging (which erases the 8x8 grid of their JPEG encoding). Training data only, never the test sets."""
    out = []
    for r in records:
        if r.source == "wright-photos":
            im = load_image(r.path)
            out.append(im.resize((im.width // 3, im.height // 3), Image.Resampling.BOX))
    return out


def format_gap(pipeline, images: list[Image.Image]) -> float:
    """Largest |P(fake) as PNG - P(fake) as JPEG q95| over ``images``."""

    def enc(im: Image.Image, fmt: str) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        return load_image(buf.getvalue())

    png = pipeline.predict_proba([enc(im, "PNG") for im in images])
    jpg = pipeline.predict_proba([enc(im, "JPEG") for im in images])
    return float(np.max(np.abs(png - jpg)))


def format_checks(pipeline, records, n: int = 40, seed: int = 0) -> dict[str, float]:
    """P(fake) of the same pixels delivered differently: PNG vs JPEG q95, and crops of other sizes."""
    rng = np.random.default_rng(seed)
    chosen = [records[i] for i in rng.choice(len(records), size=min(n, len(records)), replace=False)]

    def p_of(im: Image.Image) -> float:
        return float(pipeline.predict_proba([im])[0])

    png, jpg, small = [], [], []
    for r in chosen:
        im = load_image(r.path)
        for fmt, out in (("PNG", png), ("JPEG", jpg)):
            buf = io.BytesIO()
            im.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
            out.append(p_of(load_image(buf.getvalue())))
        w, h = im.size
        small.append(p_of(im.crop(((w - 64) // 2, (h - 64) // 2, (w - 64) // 2 + 64, (h - 64) // 2 + 64))))
    png, jpg, small = map(np.array, (png, jpg, small))
    thr = pipeline.threshold
    return {
        "n": len(chosen),
        "png_vs_jpeg95_mean_abs_diff": float(np.mean(np.abs(png - jpg))),
        "png_vs_jpeg95_max_abs_diff": float(np.max(np.abs(png - jpg))),
        "png_vs_jpeg95_verdict_agreement": float(np.mean((png > thr) == (jpg > thr))),
        "png_mean_p_fake": float(png.mean()),
        "jpeg95_mean_p_fake": float(jpg.mean()),
        "crop64_mean_p_fake": float(small.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (0 = all cores)")
    parser.add_argument("--only", type=int, default=None, help="skip selection: use CANDIDATES[ONLY]")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    if not args.shared.is_dir():
        print(f"{args.shared} not found: the default model is trained on ../shared/data", file=sys.stderr)
        return 2
    records = training_records(args.shared)
    print(f"training records: {len(records)}", file=sys.stderr)

    # 1-2. model selection by leave-one-source-out on training data only
    pristine = pristine_images(records)
    feature_cache: dict[str, tuple] = {}
    selection = []
    candidates = CANDIDATES if args.only is None else [CANDIDATES[args.only]]
    for ext_name, ext_params, det_name, det_params in candidates:
        key = json.dumps([ext_name, ext_params], sort_keys=True)
        if key not in feature_cache:
            t0 = time.perf_counter()
            feature_cache[key] = featurize(records, create_extractor(ext_name, **ext_params), jobs=args.jobs)
            print(f"{ext_name}: features in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        X, kept, failed = feature_cache[key]
        logo = leave_one_source_out(create_detector(det_name, **det_params), X, kept)
        mean_auc = float(np.mean([m["auc"] for m in logo.values()]))
        fitted = DetectionPipeline(
            create_extractor(ext_name, **ext_params), create_detector(det_name, **det_params).fit(X, targets(kept))
        )
        gap = format_gap(fitted, pristine)
        selection.append(
            {
                "extractor": ext_name,
                "extractor_params": ext_params,
                "detector": det_name,
                "detector_params": det_params,
                "logo_mean_auc": mean_auc,
                "logo_mean_ap": float(np.mean([m["ap"] for m in logo.values()])),
                "format_gap": gap,
                "logo": logo,
            }
        )
        print(
            f"  {ext_name:10s} {det_name:9s} {json.dumps(det_params):14s} LOGO mean AUC {mean_auc:.3f}, "
            f"max PNG/JPEG gap {gap:.3f}",
            file=sys.stderr,
        )
    # The simplest candidate (earliest in CANDIDATES) within TIE of the best mean AUC wins: with 11 sources of 40
    # images, smaller differences are noise.
    eligible = [s for s in selection if s["format_gap"] <= MAX_FORMAT_GAP]
    top = max(s["logo_mean_auc"] for s in eligible)
    best = next(s for s in eligible if s["logo_mean_auc"] >= top - TIE)
    print(f"chosen: {best['extractor']} + {best['detector']} {best['detector_params']}", file=sys.stderr)

    # 3. fit with the threshold chosen on out-of-fold validation scores
    extractor = create_extractor(best["extractor"], **best["extractor_params"])
    detector = create_detector(best["detector"], **best["detector_params"])
    key = json.dumps([best["extractor"], best["extractor_params"]], sort_keys=True)
    pipeline = train_pipeline(
        records,
        extractor,
        detector,
        target_fpr=0.01,
        n_folds=5,
        features=feature_cache[key],
        name="gendetect-default-v1",
        data="../shared/data: cnndetection-gallery (all) + wright-photos (split trainval)",
    )
    pipeline.info["selection"] = {
        "protocol": "leave-one-source-out mean AUC on the training sources; test sets never consulted",
        "candidates": [{k: v for k, v in s.items() if k != "logo"} for s in selection],
        "logo_of_chosen": best["logo"],
    }

    # 4. format and size checks
    checks = format_checks(pipeline, feature_cache[key][1])
    checks["n_pristine"] = len(pristine)
    checks["pristine_max_gap"] = best["format_gap"]
    pipeline.info["format_checks"] = checks

    # 5. test-only sets, once
    tests = {name: evaluate_pipeline(pipeline, recs)["metrics"] for name, recs in test_sets(args.shared).items()}
    pipeline.info["test"] = tests

    card = render_card(pipeline, best, selection, checks, tests)
    pipeline.save(args.out, card=card)
    print(f"model card: {args.out / 'MODEL_CARD.md'}")
    print(f"written to {args.out}", file=sys.stderr)
    return 0


def _metrics_table(metrics: dict[str, dict], first_col: str) -> str:
    cols = ("n_real", "n_fake", "acc_real", "acc_fake", "acc", "ap", "auc", "tpr_at_1fpr")
    lines = [f"| {first_col} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name in [k for k in metrics if k != "all"] + (["all"] if "all" in metrics else []):
        m = metrics[name]
        cells = [str(m[c]) if isinstance(m.get(c), int) else _fmt(m.get(c)) for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_card(pipeline, best, selection, checks, tests) -> str:
    parts = getattr(pipeline.extractor, "parts", (pipeline.extractor.name,))
    sat_text = (
        ", and the share of clipped highlights and shadows and the saturation histogram, a known GAN cue"
        if "saturation" in parts
        else ""
    )
    info = pipeline.info
    training = info["training"]
    rule = info["threshold_rule"]
    cand_lines = "\n".join(
        f"| {s['extractor']} {json.dumps(s['extractor_params'])} | {s['detector']} {json.dumps(s['detector_params'])} "
        f"| {_fmt(s['logo_mean_auc'])} | "
        f"{_fmt(s['logo_mean_ap'])} | {_fmt(s['format_gap'])} |"
        for s in selection
    )
    logo_lines = "\n".join(
        f"| {src} | {_fmt(m['auc'])} | {_fmt(m['ap'])} | {_fmt(m['tpr_at_1fpr'])} |" for src, m in best["logo"].items()
    )
    test_sections = "\n\n".join(f"**{name}**\n\n{_metrics_table(m, 'generator')}" for name, m in tests.items())
    return f"""# Model card: gendetect-default-v1

The detector `gendetect scan` uses when no `--model` is given. Weight-free forensic features
(`{pipeline.extractor!r}`) and a `{best["detector"]}` detector ({json.dumps(best["detector_params"])}),
{sum(a.nbytes for a in pipeline.detector.state_dict().values()) / 1024:.0f} kB of weights.
Retrain with `make default-model` (script: `scripts/train_default.py`).

## What it is and is not good for

- It looks for **low-level traces**, not content: statistics of neighbouring-pixel differences (residual
  co-occurrences, up-sampling periodicity at periods 2 and 4, the NPR ratio{sat_text}). Features are computed
  on {pipeline.extractor.crop} px crops at native resolution, never on a resized image. It needs no pretrained
  network and no torch.
- It was trained on **{training["n_images"]} small images, mostly from 2017–2019 GANs** shown as 356 px JPEG
  thumbnails. Generalisation to an unseen source is weak (leave-one-source-out mean AUC
  {best["logo_mean_auc"]:.2f}). Its **threshold is strict**: it was set for at most 1% false positives on real
  validation photos, and at that threshold it flags only a few percent of fakes. Use P(fake) as a ranking signal,
  read a "fake" verdict as "worth a closer look", and a "real" verdict as "no trace found", never as proof.
- Expect it to miss most images from modern diffusion models and commercial services (see the test-only tables).
  Train your own model on data like yours (`gendetect train`) for anything that matters.
- Real photos unlike the validation data (heavy editing, screenshots, strong compression, tiny crops) may score
  higher: 64 px crops score higher on average than full images (below).
- Licence of the training data: `cnndetection-gallery` is CC BY-NC-SA 4.0, so this model is for
  **non-commercial use**.

## A confound in the training data, and how the model avoids it

Every `cnndetection-gallery` image is a ~256 px picture centred on a 356 px canvas inside a flat coloured frame:
dark grey (34, 34, 34) around every real image, a bright generator-specific colour (yellow for BigGAN, cyan for
CRN...) around every fake. Features of the whole canvas learn the frame colour (colour statistics of the full
canvas reached a meaningless 0.95 leave-one-source-out AUC). All candidates therefore use {pipeline.extractor.crop} px
crops, which lie inside the picture.

## Training data

`{training["data"]}`: {training["labels"]} images ({training["n_unreadable"]} unreadable), fingerprint
`{training["fingerprint"]}`. Per generator: `{json.dumps(training["generators"])}`.
Formats: `{json.dumps(training["formats"])}`. The test-only sets (`wright-photos` split `test`,
`diffusion-examples/`) were used for nothing but the last table.

## Model selection (training data only)

Each candidate was scored by leave-one-source-out: fit on all other sources, test on the held-out generator's
fakes and the reals of the same subset.

| extractor | detector | LOGO mean AUC | LOGO mean AP | max PNG/JPEG-q95 gap |
|---|---|---|---|---|
{cand_lines}

Chosen: **{best["extractor"]} {json.dumps(best["extractor_params"])} + {best["detector"]}** (the simplest candidate
within {TIE} of the best mean AUC among those whose P(fake) moves by at most {MAX_FORMAT_GAP} between PNG and
JPEG q95 copies of {checks["n_pristine"]} photos without JPEG history). Its leave-one-source-out results:

| held-out source | AUC | AP | TPR@1%FPR |
|---|---|---|---|
{logo_lines}

## Threshold

{pipeline.threshold:.4f} on P(fake): {rule["rule"]}, with target FPR {rule["target_fpr"]}, from {rule["scheme"]}
over {rule["n_real_validation"]} real validation images. Scores in
({pipeline.uncertain_from:.4f}, {pipeline.threshold:.4f}] are reported as **uncertain**: they would be called fake
at a {rule["uncertain_fpr"]:.0%} validation false-positive rate, but not at 1%.
Out-of-fold validation metrics at the threshold:

{_metrics_table(info["validation"], "generator")}

## Shortcut audit

{(info.get("audit") or {}).get("message", "not run")}.

## Format and size checks

On the {checks["n_pristine"]} photos without JPEG history used for selection, the largest |ΔP(fake)| between PNG
and JPEG q95 is {checks["pristine_max_gap"]:.4f}. On {checks["n"]} training images re-encoded in memory: mean
|ΔP(fake)| between PNG and JPEG q95 is
{checks["png_vs_jpeg95_mean_abs_diff"]:.4f} (max {checks["png_vs_jpeg95_max_abs_diff"]:.4f}); verdicts agree on
{100 * checks["png_vs_jpeg95_verdict_agreement"]:.0f}%. Mean P(fake): PNG {checks["png_mean_p_fake"]:.3f}, JPEG q95
{checks["jpeg95_mean_p_fake"]:.3f}, 64 px centre crops {checks["crop64_mean_p_fake"]:.3f}.

## Test-only results (measured once, after every choice above)

{test_sections}

Versions: `{json.dumps(info["provenance"]["versions"])}`.
"""


if __name__ == "__main__":
    sys.exit(main())
