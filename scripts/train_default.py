"""Train the embedded default detector and write its model card (``make default-model``).

The protocol, in order, so that test data never influences any choice:

1. **Training data** (``split`` trainval only): real photos from ``real-photos/``, the reals of
   ``cnndetection-gallery/`` (a 240 px centre crop inside the leaking frame) and of ``wright-photos/`` (the top
   1024 x 768 photo, never the caption panel); fakes from ``modern-fakes/`` (no ``partial`` rows), the
   ``cnndetection-gallery/`` fakes and the ``wright-photos/`` fakes, cropped alike.
2. **Views.** Every image, real or fake, is seen as it is and through ``VIEWS`` random benign processing chains
   (``gendetect.augment.benign``: upscales, JPEG, WebP, denoising, edits, screenshots, social-media copies, a
   camera simulation...), drawn from the same distribution for both classes, so that no chain is a class cue;
   every lossless image of either class also has a JPEG copy (``jpeg-pair``), so that "lossless" is no cue.
   Self-made fakes (``gendetect.augment.selfmade``: interpolation cascades and a zoo of small decoders trained
   on the reals) add aligned fakes: the same content as a real photo, differing only in the up-sampling trace,
   each with a real twin that got the same post-processing.
3. **Features**: the ``tiles`` extractor (256 px tiles over the whole image at native resolution) with the
   ``PARTS`` per tile: ``periodic`` (period 2/4/8 phase spectra), ``npr`` (with ``phase_dft``), ``noise``
   (noise level per brightness, colour-channel residual correlations), ``spectrum`` and ``saturation``; each
   candidate uses a subset of them. The no-signal guard drops flat tiles. Each tile is a training row,
   weighted 1 / (tiles of its image).
4. **Model selection** on out-of-group scores: images are grouped (each fake family; the reals in 5 folds of
   their sources; a self-made fake and every view go with the image they came from); each group is scored by a
   model trained without it. Candidates differ in detector, features and training rows (processed copies of
   fakes or not, self-made fakes or not, GAN-era fakes or not: the GAN-era crops are always scored as a held-out
   family; the chain sweep, every real through every chain not drawn in step 2, trained on or only scored).
   The winner has the best mean leave-one-family-out AUC; within ``TIE`` of it, the most original fakes flagged
   at the threshold rule of step 5, then the lowest worst per-chain false-positive rate, measured on the chain
   sweep (every validation real through every chain, scored out-of-group whether trained on or not). Out-of-group
   scores are cached per candidate under ``build/default-model/``.
5. **Threshold** at most 1% false positives on the out-of-group scores of the validation reals of *every*
   chain separately (the originals, each benign chain over the sweep, JPEG copies, self-made twins), each at
   its split-conformal quantile (``CONFORMAL``: the target holds for the next real photo of that chain, not
   only for these), with a held-out-fold estimate of how that holds on unseen sources; the ``uncertain`` band starts at the pooled 5%
   point. A temperature calibrator fitted on the same scores calibrates P(fake) (no intercept: see the card).
6. **Test once**: the chosen model on the test-only rows (``modern-fakes`` families sd3, stable-cascade,
   qwen-image, hidream; ``wright-photos`` split test; ``diffusion-examples``), and the test reals through every
   chain. Printed and written to the card; nothing is chosen after it.

Writes ``src/gendetect/models/default/{config.json, model.safetensors, MODEL_CARD.md}``; caches features under
``build/default-model/``. ``--validate-only`` stops before the test step.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from gendetect.augment.benign import BENIGN
from gendetect.calibration import create_calibrator
from gendetect.data.readers import read_records
from gendetect.detectors import create_detector
from gendetect.detectors.tiled import TiledDetector, aggregate_logits
from gendetect.evaluation.agreement import format_agreement
from gendetect.evaluation.metrics import roc_auc, threshold_for_fpr, threshold_for_group_fpr
from gendetect.features import create_extractor
from gendetect.features.periodic import TILE_META
from gendetect.hub import sha256_file
from gendetect.imageio import load_image
from gendetect.pipeline import DetectionPipeline

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "gendetect" / "models" / "default"
CACHE = ROOT / "build" / "default-model"
# The model comparison of benchmarks/cnn_residual_study.py (about 10 minutes on 2 cores), kept in the repo so
# that every rebuild of the card reports it.
STUDY = ROOT / "benchmarks" / "results" / "cnn_residual_study.json"

TILE = 256
# every per-tile part a candidate may use, in column order; a candidate's "cols" names a "+"-joined subset
# ("all" is periodic+npr, the v3 features)
PARTS = ("periodic", "npr", "noise", "spectrum", "saturation")
PART_PARAMS = {"npr": {"phase_dft": True}}
BASE = {"name": "forensic", "params": {"crop": TILE, "n_crops": 1, "parts": list(PARTS), "part_params": PART_PARAMS}}
EXTRACTOR = {"name": "tiles", "params": {"base": BASE, "tile": TILE, "max_tiles": 64}}
VIEWS = 4  # random benign chains per image, both classes
MAX_FPR = 0.01
# the per-chain rule's quantile: split-conformal (added after v9, whose in-sample rule let one chain, downscale-x0.75,
# run at 1.1% on the real folds it did not see; evaluation.metrics.threshold_for_fpr explains the difference)
CONFORMAL = True
BAND_FPR = 0.05
TIE = 0.01
SELFMADE_FLOOR = 0.25  # least share of self-made fakes a candidate must flag at its own 1%-FPR threshold
REAL_FOLDS = 5
SMALL_FAMILY = 5  # modern families with fewer fakes are pooled as "other-modern" for grouping
CHAIN_POOL = [n for n in BENIGN.list() if n != "none"]

MODEL_NAME = "gendetect-default-v10"
HGB = {"max_iter": 120, "learning_rate": 0.08}
CANDIDATES: dict[str, dict] = {
    # name: detector, its params, per-tile features, which training rows
    "logistic periodic+npr, processed reals + self-made": {"det": "logistic", "params": {"C": 0.05}, "cols": "all",
                                                              "rows": "all"},
    "hgb periodic+npr, originals only": {"det": "hgb", "params": HGB, "cols": "all", "rows": "originals"},
    "hgb periodic+npr, processed reals, no self-made": {"det": "hgb", "params": HGB, "cols": "all", "rows": "no-selfmade"},
    "hgb periodic+npr, processed reals + self-made": {"det": "hgb", "params": HGB, "cols": "all", "rows": "all"},
    "hgb npr, processed reals + self-made": {"det": "hgb", "params": HGB, "cols": "npr", "rows": "all"},
    # added for v3: fakes only as generated (plus self-made), reals also processed; and no GAN-era fakes
    "hgb npr, processed reals only + self-made": {"det": "hgb", "params": HGB, "cols": "npr", "rows": "processed-reals"},
    "hgb periodic+npr, processed reals only + self-made": {"det": "hgb", "params": HGB, "cols": "all",
                                                              "rows": "processed-reals"},
    "hgb npr, processed reals + self-made, no GAN-era": {"det": "hgb", "params": HGB, "cols": "npr", "rows": "no-gan"},
    "hgb periodic+npr, processed reals + self-made, no GAN-era": {"det": "hgb", "params": HGB, "cols": "all",
                                                                     "rows": "no-gan"},
    "hgb periodic+npr, processed reals, no self-made, no GAN-era": {"det": "hgb", "params": HGB, "cols": "all",
                                                                       "rows": "no-gan+no-selfmade"},
    "hgb npr, processed reals, no self-made, no GAN-era": {"det": "hgb", "params": HGB, "cols": "npr",
                                                              "rows": "no-gan+no-selfmade"},
    "hgb npr, processed reals only + self-made, no GAN-era": {"det": "hgb", "params": HGB, "cols": "npr",
                                                                 "rows": "no-gan+processed-reals"},
    "hgb npr (300 trees, lr 0.05), processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": {"max_iter": 300, "learning_rate": 0.05}, "cols": "npr", "rows": "no-gan"},
    "hgb npr (60 trees, 7 leaves), processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": {"max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 7}, "cols": "npr", "rows": "no-gan"},
    # added for v4: the image's log-odds as a robust aggregate of its tiles' (same fits as the mean's)
    "hgb periodic+npr, processed reals + self-made, no GAN-era, median of tiles": {
        "det": "hgb", "params": HGB, "cols": "all", "rows": "no-gan", "agg": "median"},
    "hgb periodic+npr, processed reals + self-made, no GAN-era, trimmed mean of tiles": {
        "det": "hgb", "params": HGB, "cols": "all", "rows": "no-gan", "agg": "trimmed"},
    # added for v4: more per-tile parts beside periodic+npr
    "hgb periodic+npr+noise, processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan"},
    "hgb periodic+npr+spectrum, processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+spectrum", "rows": "no-gan"},
    "hgb periodic+npr+saturation, processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+saturation", "rows": "no-gan"},
    "hgb all five parts, processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise+spectrum+saturation", "rows": "no-gan"},
    "hgb npr+noise, processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "npr+noise", "rows": "no-gan"},
    "hgb periodic+npr+noise, processed reals, no self-made, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+no-selfmade"},
    "hgb periodic+npr+noise (250 trees, lr 0.05), processed reals + self-made, no GAN-era": {
        "det": "hgb", "params": {"max_iter": 250, "learning_rate": 0.05}, "cols": "periodic+npr+noise",
        "rows": "no-gan"},
    "hgb periodic+npr+noise, processed reals + self-made, no GAN-era, median of tiles": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan", "agg": "median"},
    # like with like: every lossless image (real or fake) also as a JPEG copy in the training rows
    "hgb periodic+npr+noise, processed reals + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+jpeg-pairs"},
    "hgb periodic+npr+noise (250 trees, lr 0.05), processed reals + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": {"max_iter": 250, "learning_rate": 0.05}, "cols": "periodic+npr+noise",
        "rows": "no-gan+jpeg-pairs"},
    # added for v6: the per-chain threshold rule is set by the worst chains (denoise-bilateral, screenshot, webp),
    # which each real meets in only 4 of its 25 chains; these also train on the chain sweep (every real through
    # every chain). Still out-of-group: a real fold's sweep views are scored by fits without that fold.
    "hgb periodic+npr+noise, every real through every chain + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+jpeg-pairs+sweep"},
    "hgb periodic+npr+noise (250 trees, lr 0.05), every real through every chain + self-made + JPEG copies, "
    "no GAN-era": {
        "det": "hgb", "params": {"max_iter": 250, "learning_rate": 0.05}, "cols": "periodic+npr+noise",
        "rows": "no-gan+jpeg-pairs+sweep"},
    # added after v6: the chain sweep trains on every real through every chain but on every fake through only 4;
    # like with like, every fake through every chain too
    "hgb periodic+npr+noise, every image through every chain + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+jpeg-pairs+sweep+fake-sweep"},
    # added after v6: the per-chain rule is set by the tail of the real scores; the mean log-odds of 5 seeds'
    # fits (each draws other features per split) should have a smoother tail than one fit
    "hgb x5 seeds periodic+npr+noise, every real through every chain + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": {**HGB, "n_seeds": 5}, "cols": "periodic+npr+noise",
        "rows": "no-gan+jpeg-pairs+sweep"},
    # added after v6: the shipped rule is a low-FPR point (1% on every chain), set by the highest-scoring reals;
    # weighting the reals' rows more makes the loss spend itself on that tail rather than on the fakes' middle
    "hgb periodic+npr+noise, reals weighted x3, every real through every chain + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+jpeg-pairs+sweep",
        "real_weight": 3.0},
    # added after v7 (its test figures seen): leave-one-family-out AUC asks for traces shared across families, but
    # sd1 (90 fakes) and ldm (48) outweigh kolors (19) and sdxl (14) in the loss; each family's fakes get equal
    # total weight, so the trees cannot spend themselves on the largest families' own traces
    "hgb periodic+npr+noise, reals weighted x3, fake families weighted alike, every real through every chain + "
    "self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+jpeg-pairs+sweep",
        "real_weight": 3.0, "family_balance": True},
    # added after v7 (its test figures seen): the shipped rule is set by a few real images' views (one McMaster
    # photo has 9 near the threshold); leaves of at least 200 tiles cannot isolate one image's tiles
    "hgb periodic+npr+noise (leaves of >= 200 tiles), reals weighted x3, every real through every chain + "
    "self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": {**HGB, "min_samples_leaf": 200}, "cols": "periodic+npr+noise",
        "rows": "no-gan+jpeg-pairs+sweep", "real_weight": 3.0},
    # added after v10 (v9's test figures seen, v10's too): weighting the reals x3 raised the fakes flagged at the
    # per-chain rule from 6.1% to 10.5%; does a heavier weight on the tail that sets the rule raise it further?
    "hgb periodic+npr+noise, reals weighted x6, every real through every chain + self-made + JPEG copies, no GAN-era": {
        "det": "hgb", "params": HGB, "cols": "periodic+npr+noise", "rows": "no-gan+jpeg-pairs+sweep",
        "real_weight": 6.0},
}
PART_WORDS = {
    "periodic": "period-2/4/8 up-sampling spectra (`periodic`)",
    "npr": "neighbouring-pixel statistics (`npr` with `phase_dft`: residual co-occurrences, period-2/4 phase "
    "statistics, the NPR ratio)",
    "noise": "noise-level statistics (`noise`: sigma per brightness bin, residual kurtosis, colour-channel "
    "residual correlations)",
    "spectrum": "residual power spectra (`spectrum`)",
    "saturation": "saturation and clipping statistics (`saturation`)",
}


AGG_WORDS = {"mean": "mean", "median": "median", "trimmed": "trimmed mean (middle half of the tiles)"}


def part_names(kind: str) -> list[str]:
    """The parts a candidate's ``cols`` names, in column order."""
    names = ["periodic", "npr"] if kind == "all" else kind.split("+")
    unknown = set(names) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown feature parts {sorted(unknown)}; valid: {', '.join(PARTS)}")
    return [p for p in PARTS if p in names]


def feature_words(kind: str) -> str:
    words = [PART_WORDS[p] for p in part_names(kind)]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def shipped_base(kind: str) -> dict:
    """The per-tile extractor a column choice ships with: its features equal those columns of ``BASE``."""
    names = part_names(kind)
    if len(names) == 1:
        return {"name": names[0], "params": {"crop": TILE, "n_crops": 1, **PART_PARAMS.get(names[0], {})}}
    return {"name": "forensic", "params": {"crop": TILE, "n_crops": 1, "parts": names,
                                           "part_params": {p: v for p, v in PART_PARAMS.items() if p in names}}}


@dataclass
class Item:
    """One training or test image before processing."""

    path: str
    label: int  # 1 = fake
    family: str  # generator family for fakes, "real" for reals
    source: str  # dataset folder / real set
    group: str  # grouping for out-of-group scores
    split: str
    region: str  # "whole", "centre240", "wright-top"
    photoreal: bool = True
    extra: dict = field(default_factory=dict)
    licence: str = ""  # of the file's origin (``licence_of``)


# Licence of each origin, as the folders' LICENSE notes in ../shared/data give them: the repositories named in the
# ``origin`` column (modern-fakes, real-photos) and the folders that have one licence for every file.
ORIGIN_LICENCES = {
    "comfyanonymous/ComfyUI_examples": "0BSD-style",
    "invoke-ai/InvokeAI": "Apache-2.0",
    "Kwai-Kolors/Kolors": "Apache-2.0 (repository; the model has its own)",
    "CompVis/stable-diffusion": "CreativeML Open RAIL-M",
    "Stability-AI/stablediffusion": "MIT (code)",
}
# real-photos: "None of these repositories has a LICENSE file: research use only" (its note), the 8 photos from
# CompVis/stable-diffusion included (Unsplash/Flickr photos; that repository's licence is the model's)
FOLDER_LICENCES = {
    "cnndetection-gallery": "CC BY-NC-SA 4.0",
    "wright-photos": "MIT",
    "real-photos": "research use (no licence file; cite the dataset)",
}


def licence_of(folder: str, origin: str | None) -> str:
    """The licence of a file from ``folder`` whose ``origin`` column is ``repository:path`` (or empty)."""
    if folder in FOLDER_LICENCES:
        return FOLDER_LICENCES[folder]
    repo = (origin or "").split(":")[0]
    return ORIGIN_LICENCES.get(repo, f"see {repo}" if repo else f"see ../shared/data/{folder}")


def _region(image: Image.Image, region: str) -> Image.Image:
    if region == "centre240":
        w, h = image.size
        left, top = (w - 240) // 2, (h - 240) // 2
        return image.crop((left, top, left + 240, top + 240))
    if region == "wright-top":
        return image.crop((0, 0, min(image.width, 1024), min(image.height, 768)))
    return image


def _real_group(source: str) -> str:
    return f"reals-{int(hashlib.sha256(source.encode()).hexdigest(), 16) % REAL_FOLDS}"


def collect(shared: Path) -> list[Item]:
    items: list[Item] = []

    def read(folder: str) -> list:
        return read_records(shared / folder, layout="labels-csv", probe=False)

    modern = read("modern-fakes")
    counts = Counter(r.source for r in modern if (r.split or "") == "trainval")
    for r in modern:
        if str(r.extra.get("partial", "0")) == "1":
            continue
        fam = r.source or r.generator
        group = fam if counts.get(fam, 0) >= SMALL_FAMILY else "other-modern"
        split = (r.split or "trainval").lower()
        items.append(Item(r.path, 1, fam, "modern-fakes", group if split == "trainval" else "test", split, "whole",
                          photoreal=fam != "sd1-finetune", licence=licence_of("modern-fakes", r.extra.get("origin"))))
    for r in read("real-photos"):
        src = f"real-photos/{r.source}"
        items.append(Item(r.path, 0, "real", src, _real_group(src), (r.split or "trainval").lower(), "whole",
                          licence=licence_of("real-photos", r.extra.get("origin"))))
    for r in read("cnndetection-gallery"):
        gen = (r.source or "cnndetection-gallery/unknown").split("/")[-1]
        if r.label == "fake":
            items.append(Item(r.path, 1, f"gan:{gen}", "cnndetection", "gan-era", "trainval", "centre240",
                              licence=licence_of("cnndetection-gallery", None)))
        else:
            src = f"cnndetection/{gen}"
            items.append(Item(r.path, 0, "real", src, _real_group(src), "trainval", "centre240",
                              licence=licence_of("cnndetection-gallery", None)))
    for r in read("wright-photos"):
        split = (r.split or "trainval").lower()
        if r.label == "fake":
            items.append(Item(r.path, 1, "flux-pro (wright)", "wright", "wright" if split == "trainval" else "test",
                              split, "wright-top", licence=licence_of("wright-photos", None)))
        else:
            items.append(Item(r.path, 0, "real", "wright", _real_group("wright") if split == "trainval" else "test",
                              split, "wright-top", licence=licence_of("wright-photos", None)))
    for r in read("diffusion-examples"):
        fam = r.generator if r.label == "fake" else "real"
        items.append(Item(r.path, int(r.label == "fake"), fam or "unknown", "diffusion-examples", "test", "test",
                          "whole", licence=licence_of("diffusion-examples", r.source)))
    return items


# -- views and features (worker processes) ----------------------------------------------------------------------
_EXTRACTOR = None


def _init() -> None:
    global _EXTRACTOR
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _EXTRACTOR = create_extractor(EXTRACTOR["name"], **EXTRACTOR["params"])


def view_image(path: str, region: str, chain: str, seed: int) -> Image.Image:
    image = _region(load_image(path), region)
    if chain != "none":
        image = BENIGN.create(chain)(image, seed)
    return image


def _features(task: tuple) -> tuple[int, np.ndarray | None, str | None]:
    key, path, region, chain, seed = task
    try:
        image = view_image(path, region, chain, seed)
        return key, _EXTRACTOR.extract_tiles(image), None
    except Exception as e:  # noqa: BLE001 - recorded and reported; a view that fails is left out
        return key, None, f"{type(e).__name__}: {e}"


@dataclass
class View:
    item: int  # index into items (for self-made fakes: the real they came from)
    label: int
    chain: str
    seed: int
    path: str  # the file read (for self-made fakes: the cached PNG)
    region: str
    kind: str  # "original", "processed", "jpeg-pair", "selfmade", "selfmade-twin", "chain-sweep"
    method: str = ""


def plan_views(items: list[Item], seed: int) -> list[View]:
    views = []
    for i, it in enumerate(items):
        views.append(View(i, it.label, "none", 0, it.path, it.region, "original"))
        rng = np.random.default_rng([seed, int(hashlib.sha256(it.path.encode()).hexdigest()[:8], 16)])
        for chain in rng.choice(CHAIN_POOL, size=VIEWS, replace=False):
            views.append(View(i, it.label, str(chain), int(rng.integers(2**31)), it.path, it.region, "processed"))
        if it.path.lower().endswith(".png"):  # like with like: a JPEG copy of every lossless image, both classes
            views.append(View(i, it.label, "jpeg", int(rng.integers(2**31)), it.path, it.region, "jpeg-pair"))
    return views


def sweep_views(items: list[Item], views: list[View], seed: int, label: int = 0) -> list[View]:
    """Every trainval image of class ``label`` through every benign chain its random views did not draw.

    Reals (kind ``chain-sweep``): scored out-of-group, and trained on only by the candidates whose rule says so,
    so that each chain's false-positive rate rests on every validation real (about 450 views per chain) instead
    of the ~70 the random draw gives it, enough to tell 1% from 3%. Fakes (``label=1``, kind ``fake-sweep``): the
    same for the fakes (like with like), trained on and scored only by the candidates whose rule says so; they
    are appended after every other view, so that a candidate without them is fitted and scored on exactly the
    views before them (:func:`cached_out_of_group`)."""
    kind, stream = ("chain-sweep", 1) if label == 0 else ("fake-sweep", 2)
    drawn = defaultdict(set)
    for v in views:
        if v.kind == "processed":
            drawn[v.item].add(v.chain)
    out = []
    for i, it in enumerate(items):
        if it.label != label or it.split != "trainval":
            continue
        rng = np.random.default_rng([seed, stream, int(hashlib.sha256(it.path.encode()).hexdigest()[:8], 16)])
        for chain in CHAIN_POOL:
            s = int(rng.integers(2**31))  # drawn for every chain, so a view's seed does not depend on the draw
            if chain not in drawn[i]:
                out.append(View(i, label, chain, s, it.path, it.region, kind))
    return out


def chain_of(v: View) -> str:
    """The processing-chain group of a real view: its chain for processed and sweep views, else its kind."""
    return v.chain if v.kind in ("processed", "chain-sweep") else v.kind


def selfmade_views(items: list[Item], seed: int, zoo_steps: int) -> list[View]:
    """Self-made fakes of every trainval real and their matched real twins, cached as PNG under ``CACHE``."""
    from gendetect.augment import selfmade

    out_dir = CACHE / f"selfmade-{seed}-{zoo_steps}"
    out_dir.mkdir(parents=True, exist_ok=True)
    reals = [i for i, it in enumerate(items) if it.label == 0 and it.split == "trainval"]
    zoo_dir = out_dir / "zoo"
    if (zoo_dir / "config.json").exists():
        zoo = selfmade.DecoderZoo.load(zoo_dir)
    else:
        rng = np.random.default_rng(seed)
        pick = rng.choice(reals, size=min(60, len(reals)), replace=False)
        zoo = selfmade.train_decoder_zoo([_region(load_image(items[i].path), items[i].region) for i in pick],
                                         n_models=6, seed=seed, steps=zoo_steps)
        zoo.save(zoo_dir)
    stems = [hashlib.sha256(items[i].path.encode()).hexdigest()[:16] for i in reals]
    index = out_dir / "index.json"
    if not index.exists():
        photos = [_region(load_image(items[i].path), items[i].region) for i in reals]
        samples = selfmade.make_selfmade_set(photos, seed=seed, zoo=zoo)
        methods = {}
        for stem, (twin, fake) in zip(stems, zip(samples[0::2], samples[1::2])):
            twin.image.save(out_dir / f"{stem}-twin.png")
            fake.image.save(out_dir / f"{stem}-fake.png")
            methods[stem] = {"method": fake.generator, "post": fake.post}
        index.write_text(json.dumps(methods, indent=0))
    methods = json.loads(index.read_text())
    views = []
    for i, stem in zip(reals, stems):
        m = methods[stem]["method"]
        views.append(View(i, 1, "none", 0, str(out_dir / f"{stem}-fake.png"), "whole", "selfmade", m))
        views.append(View(i, 0, "none", 0, str(out_dir / f"{stem}-twin.png"), "whole", "selfmade-twin", m))
    return views


def cache_key(v: View, digests: dict[str, str]) -> str:
    """The features cache's key of a view: its file's bytes (sha256, memoised per path in ``digests``), region,
    chain and seed; not the file's name or mtime, so that a copy of the same data (``../shared`` re-materialised,
    another checkout) finds its cached features and a regenerated self-made fake with other pixels does not."""
    if v.path not in digests:
        digests[v.path] = sha256_file(v.path)
    return hashlib.sha256(f"{digests[v.path]}|{v.region}|{v.chain}|{v.seed}".encode()).hexdigest()[:20]


def extract(views: list[View], jobs: int) -> tuple[list[np.ndarray | None], list[str | None]]:
    # the extractor's whole config, its defaults too: a changed default (the graphic check) must not reuse features
    full = create_extractor(EXTRACTOR["name"], **EXTRACTOR["params"]).get_config()
    cfg = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:10]
    cache = CACHE / f"features-{cfg}"
    cache.mkdir(parents=True, exist_ok=True)
    feats: list[np.ndarray | None] = [None] * len(views)
    errors: list[str | None] = [None] * len(views)
    todo = []
    digests: dict[str, str] = {}
    for k, v in enumerate(views):
        f = cache / f"{cache_key(v, digests)}.npy"
        if f.exists():
            feats[k] = np.load(f)
        else:
            todo.append((k, v.path, v.region, v.chain, v.seed, f))
    logging.info("features: %d cached, %d to extract", len(views) - len(todo), len(todo))
    t0 = time.time()
    with mp.get_context("fork").Pool(jobs, initializer=_init) as pool:
        files = {t[0]: t[5] for t in todo}
        for n, (k, x, err) in enumerate(pool.imap_unordered(_features, [t[:5] for t in todo], chunksize=4)):
            if x is not None:
                np.save(files[k], x)
            feats[k], errors[k] = x, err
            if n % 500 == 0:
                logging.info("  %d/%d (%.0f s)", n, len(todo), time.time() - t0)
    return feats, errors


# -- training and scoring ----------------------------------------------------------------------------------------
def columns(kind: str, dim: int) -> np.ndarray:
    """The columns of the tile rows (``TILE_META`` first, then ``BASE``'s parts) that ``kind`` uses."""
    base = create_extractor(BASE["name"], **BASE["params"])
    assert base.dim == dim, f"tile rows of {dim} feature values, BASE gives {base.dim}"
    start, cols = len(TILE_META), []
    for name, part in zip(PARTS, base._parts):
        if name in part_names(kind):
            cols.append(np.arange(start, start + part.dim))
        start += part.dim
    return np.concatenate(cols)


def tile_table(feats: list[np.ndarray | None], rows: np.ndarray):
    """Stack the signal tiles of the views in ``rows``: (X, view index per tile, weight per tile)."""
    X, owner, weight = [], [], []
    for r in rows:
        f = feats[r]
        if f is None or len(f) == 0:
            continue
        sig = f[:, 4] > 0.5
        if not sig.any():
            continue
        X.append(f[sig])
        owner.append(np.full(int(sig.sum()), r))
        weight.append(np.full(int(sig.sum()), 1.0 / sig.sum()))
    return np.concatenate(X), np.concatenate(owner), np.concatenate(weight)


def tile_families(views, items, owner: np.ndarray) -> np.ndarray:
    """The generator family (its out-of-group group) of each tile row's view, ``""`` for reals and self-made
    fakes: what ``family_balance`` balances."""
    fam = [items[views[k].item].group if views[k].label == 1 and not views[k].kind.startswith("selfmade") else ""
           for k in range(len(views))]
    return np.asarray(fam, dtype=object)[owner]


def row_weights(cand: dict, w: np.ndarray, y: np.ndarray, family: np.ndarray | None = None) -> np.ndarray:
    """The tile weights of a candidate's training rows: 1 / (signal tiles of the image), times the candidate's
    ``real_weight`` (default 1) on the reals' tiles (before the detector's own class balancing). With
    ``family_balance``, the generated fakes' weight is shared equally among their families (``family``, per tile
    row, from :func:`tile_families`), its total unchanged; reals and self-made fakes keep theirs."""
    k = float(cand.get("real_weight", 1.0))
    out = w if k == 1.0 else w * np.where(y == 0, k, 1.0)
    if cand.get("family_balance"):
        if family is None:
            raise ValueError("family_balance needs the family of every tile row")
        gen = family != ""
        names = sorted(set(family[gen]))
        total = out[gen].sum()
        out = out.copy()
        for f in names:
            m = family == f
            out[m] *= total / (len(names) * out[m].sum())
    return out


def fit(cand: dict, X: np.ndarray, y: np.ndarray, w: np.ndarray, family: np.ndarray | None = None):
    """The candidate's detector fitted on tile rows ``X``, ``y`` with the tile weights ``w`` (see
    :func:`row_weights`); only ``hgb`` takes weights."""
    d = create_detector(cand["det"], **cand["params"])
    if cand["det"] == "hgb":
        return d.fit(X, y, sample_weight=row_weights(cand, w, y, family))
    for key in ("real_weight", "family_balance"):
        if key in cand:
            raise ValueError(f"{key} needs sample weights, which {cand['det']!r} does not take here")
    return d.fit(X, y)


def tile_logits(detector, feats, rows, cols) -> tuple[np.ndarray, np.ndarray]:
    """``(view index, log-odds)`` of every signal tile of the views in ``rows``."""
    X, owner, _ = tile_table(feats, rows)
    return owner, detector.decision_function(X[:, cols])


def train_rows(views, items, kind: str, mask: np.ndarray) -> np.ndarray:
    """The training views in ``mask`` that ``kind`` keeps: "all", or "+"-joined rules: "originals" (no processed
    or self-made views), "no-selfmade", "no-gan" (no GAN-era fakes), "processed-reals" (processed copies of reals
    only; fakes as generated), "jpeg-pairs" (also the JPEG copy of every lossless image, both classes; left out
    otherwise, and always scored), "sweep" (also the chain sweep: every real through every chain; left out
    otherwise, and always scored), "fake-sweep" (also every fake through every chain, :func:`sweep_views`).
    Out-of-group scoring holds whichever rows a rule keeps: a real fold's views, the sweep's too, are scored by
    fits that never saw that fold."""
    rules = set() if kind == "all" else set(kind.split("+"))
    unknown = rules - {"originals", "no-selfmade", "no-gan", "processed-reals", "jpeg-pairs", "sweep", "fake-sweep"}
    if unknown:
        raise ValueError(f"unknown training-row rules {sorted(unknown)}")
    keep = []
    for k, v in enumerate(views):
        if not mask[k]:
            continue
        if "originals" in rules and v.kind != "original":
            continue
        if v.kind == "chain-sweep" and "sweep" not in rules:  # scored only, unless the rule trains on it
            continue
        if v.kind == "fake-sweep" and "fake-sweep" not in rules:
            continue
        if v.kind == "jpeg-pair" and "jpeg-pairs" not in rules:
            continue
        if "no-selfmade" in rules and v.kind.startswith("selfmade"):
            continue
        if "no-gan" in rules and items[v.item].family.startswith("gan:"):
            continue
        if "processed-reals" in rules and v.label == 1 and v.kind == "processed":
            continue
        keep.append(k)
    return np.asarray(keep)


_OOG: dict = {}


def _fit_group(g: str) -> tuple[np.ndarray, np.ndarray]:
    cand, views, items, feats, trainval, groups, labels, cols = (
        _OOG[k] for k in ("cand", "views", "items", "feats", "trainval", "groups", "labels", "cols")
    )
    held = np.where(trainval & (groups == g))[0]
    rows = train_rows(views, items, cand["rows"], trainval & (groups != g))
    X, owner, w = tile_table(feats, rows)
    det = fit(cand, X[:, cols], labels[owner], w, tile_families(views, items, owner))
    return tile_logits(det, feats, held, cols)


def out_of_group(cand: dict, views, items, feats, trainval: np.ndarray, jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(view index, log-odds)`` of every signal tile of every trainval view, from a model trained without the
    view's group (groups fitted in ``jobs`` forked processes)."""
    groups = np.asarray([items[v.item].group for v in views])
    labels = np.asarray([v.label for v in views])
    dim = next(f.shape[1] for f in feats if f is not None and len(f)) - len(TILE_META)
    _OOG.update(cand=cand, views=views, items=items, feats=feats, trainval=trainval, groups=groups, labels=labels,
                cols=columns(cand["cols"], dim))
    todo = sorted(set(groups[trainval]))
    if jobs > 1:
        with mp.get_context("fork").Pool(jobs) as pool:
            done = pool.map(_fit_group, todo, chunksize=1)
    else:
        done = [_fit_group(g) for g in todo]
    return np.concatenate([o for o, _ in done]), np.concatenate([z for _, z in done])


OOG_VERSION = 3  # bump when fitting changes (2: hgb bins on unweighted quantiles; 3: tile log-odds are kept)


_DIGESTS: dict[int, tuple[list, str]] = {}


def features_digest(feats: list[np.ndarray | None]) -> str:
    """sha256 of every view's feature values in view order (a missing view counts as such); computed once per list."""
    hit = _DIGESTS.get(id(feats))
    if hit is not None and hit[0] is feats:
        return hit[1]
    h = hashlib.sha256()
    for f in feats:
        h.update(b"-" if f is None else np.ascontiguousarray(f).tobytes() + str(f.shape).encode())
    _DIGESTS[id(feats)] = (feats, h.hexdigest())
    return _DIGESTS[id(feats)][1]


def cached_out_of_group(cand: dict, views, items, feats, trainval: np.ndarray, jobs: int = 1) -> np.ndarray:
    """Out-of-group image log-odds per view (NaN for views outside ``trainval`` or without signal), aggregated
    by the candidate's tile rule (``agg``, default the mean) from :func:`cached_tile_logits`."""
    owner, z = cached_tile_logits(cand, views, items, feats, trainval, jobs)
    return aggregate_logits(z, owner, len(views), cand.get("agg", "mean"))  # the shipped tiled detector's rule


def cached_tile_logits(cand: dict, views, items, feats, trainval: np.ndarray,
                       jobs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(view index, log-odds)`` of every signal tile of the trainval views, out-of-group (:func:`out_of_group`).

    Cached under ``CACHE`` by the fit (the candidate less its ``agg``), the extractor, the views, the groups and
    a digest of the feature values (so that features re-extracted by changed code are never scored by a fit
    cached on the old ones), so that ``--validate-only``, the full run and candidates that differ only in the
    aggregate share one fit."""
    fit_cand = {k: v for k, v in cand.items() if k != "agg"}
    if "fake-sweep" not in fit_cand["rows"].split("+"):  # fitted and scored on the views before the fake sweep
        views, feats, trainval = _before_fake_sweep(views, feats, trainval)
    key = json.dumps({"cand": fit_cand, "extractor": EXTRACTOR, "version": OOG_VERSION,
                      "features": features_digest(feats),
                      "views": [(v.path, v.chain, v.seed, v.kind) for v in views],
                      "groups": [items[v.item].group for v in views], "trainval": trainval.tolist()}, sort_keys=True)
    f = CACHE / f"oog-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if f.exists():
        with np.load(f) as data:
            owner, z = data["owner"], data["z"]
    else:
        owner, z = out_of_group(fit_cand, views, items, feats, trainval, jobs=jobs)
        np.savez(f, owner=owner, z=z)
    return owner, z


_PREFIX: dict = {}


def _before_fake_sweep(views, feats, trainval):
    """The views, features and mask before the first ``fake-sweep`` view (they come last), the same list objects
    on every call (so that :func:`features_digest` computes its digest once)."""
    n = next((k for k, v in enumerate(views) if v.kind == "fake-sweep"), len(views))
    assert all(v.kind == "fake-sweep" for v in views[n:]), "the fake sweep's views must come last"
    hit = _PREFIX.get((id(views), id(feats), n))
    if hit is None or hit[0] is not views or hit[1] is not feats:
        hit = _PREFIX[(id(views), id(feats), n)] = (views, feats, views[:n], feats[:n])
    return hit[2], hit[3], trainval[:n]


def per_chain_rule(scores, views, items, trainval) -> dict:
    """The shipped threshold rule on out-of-group ``scores``: the lowest score at which every chain group of
    validation reals (:func:`chain_of`) has at most ``MAX_FPR`` false positives (at the split-conformal quantile
    when ``CONFORMAL``), and how it holds on reals it did
    not see: per real fold, the rule set on the other folds' reals, the false positives counted on this fold's
    (``held_out``, per chain; the honest estimate, since the in-sample FPR is at most the target by
    construction). Also the TPR on original fakes at the rule's threshold."""
    labels = np.asarray([v.label for v in views])
    real = trainval & (labels == 0) & np.isfinite(scores)
    chain = np.asarray([chain_of(v) for v in views], dtype=object)
    fold = np.asarray([items[v.item].group for v in views], dtype=object)
    thr = threshold_for_group_fpr(scores[real], chain[real], MAX_FPR, conformal=CONFORMAL)
    fp, n = Counter(), Counter()
    for g in sorted(set(fold[real])):
        inside, outside = real & (fold == g), real & (fold != g)
        t = threshold_for_group_fpr(scores[outside], chain[outside], MAX_FPR, conformal=CONFORMAL)
        for c, x in zip(chain[inside], scores[inside]):
            fp[c] += int(x > t)
            n[c] += 1
    held_out = {c: {"n": n[c], "fpr": fp[c] / n[c]} for c in sorted(n)}
    orig_fake = trainval & (labels == 1) & np.isfinite(scores) & np.asarray([v.kind == "original" for v in views])
    return {"threshold": thr, "held_out": held_out,
            "worst_held_out_fpr": max(m["fpr"] for c, m in held_out.items()),
            "tpr_originals": float(np.mean(scores[orig_fake] > thr))}


def threshold_neighbours(scores, views, items, trainval, thr: float, width: float = 0.5, top: int = 5,
                         root: Path | None = None) -> dict:
    """Which validation reals set the threshold: the real views whose out-of-group score lies within ``width``
    of ``thr`` or above it, counted by real source, and the images with most such views (any chain), named
    relative to ``root`` (the data folder) so that no artefact records the build machine's paths. These are
    the photos a user's own look-alikes will be flagged like."""
    labels = np.asarray([v.label for v in views])
    near = np.where(trainval & (labels == 0) & np.isfinite(scores) & (scores >= thr - width))[0]
    sources = Counter(items[views[k].item].source for k in near)
    paths = (Path(items[views[k].item].path) for k in near)
    images = Counter(p.resolve().relative_to(root.resolve()).as_posix() if root else str(p) for p in paths)
    return {"n": len(near), "width": width, "sources": dict(sources.most_common(top)),
            "images": dict(images.most_common(top))}


def threshold_at(real_scores: np.ndarray, fpr: float) -> float:
    """``threshold_for_fpr`` on the finite scores (views without signal have none)."""
    s = real_scores[np.isfinite(real_scores)]
    return threshold_for_fpr(s, fpr) if len(s) else 0.0


def summarise(scores, views, items, sel, thr) -> dict:
    """Leave-one-family-out AUC and TPR, per-chain FPR, on the views in ``sel`` (finite scores only)."""
    labels = np.asarray([v.label for v in views])
    orig = np.asarray([v.kind == "original" for v in views])
    ok = np.isfinite(scores) & sel
    reals0 = ok & orig & (labels == 0)
    fam = defaultdict(list)
    for k in np.where(ok & orig & (labels == 1))[0]:
        it = items[views[k].item]
        fam[it.group if it.split == "trainval" else it.family].append(k)
    per_family = {}
    for f, ks in sorted(fam.items()):
        s = np.concatenate([scores[reals0], scores[ks]])
        y = np.r_[np.zeros(reals0.sum()), np.ones(len(ks))]
        per_family[f] = {"n": len(ks), "auc": float(roc_auc(y, s)), "tpr": float(np.mean(scores[ks] > thr))}
    chains = defaultdict(list)
    for k in np.where(ok & (labels == 0))[0]:
        chains[chain_of(views[k])].append(scores[k])
    per_chain = {c: {"n": len(s), "fpr": float(np.mean(np.asarray(s) > thr))} for c, s in sorted(chains.items())}
    selfmade = ok & np.asarray([v.kind == "selfmade" for v in views])
    fake_sweep = np.asarray([v.kind == "fake-sweep" for v in views])  # only scored for candidates trained on it
    unscored = fake_sweep & ~np.isfinite(scores[fake_sweep]).any()  # then none has a score: not "no signal"
    photoreal = ok & orig & np.asarray([items[v.item].photoreal for v in views])
    pr = photoreal & (labels == 1)
    return {
        "per_family": per_family,
        "mean_family_auc": float(np.mean([m["auc"] for m in per_family.values()])) if per_family else float("nan"),
        "per_chain": per_chain,
        "worst_chain_fpr": max((m["fpr"] for c, m in per_chain.items() if c not in ("original",)), default=0.0),
        "fpr_all_reals": float(np.mean(scores[ok & (labels == 0)] > thr)),  # every real view, the sweep's too
        "tpr_originals": float(np.mean(scores[ok & orig & (labels == 1)] > thr)),
        "tpr_processed_fakes": float(np.mean(scores[ok & ~orig & (labels == 1) & ~selfmade & ~fake_sweep] > thr)),
        "tpr_selfmade": float(np.mean(scores[selfmade] > thr)) if selfmade.any() else float("nan"),
        "photoreal_auc": float(roc_auc(np.r_[np.zeros(reals0.sum()), np.ones(pr.sum())],
                                       np.r_[scores[reals0], scores[pr]])) if pr.any() else float("nan"),
        "no_signal": int((~np.isfinite(scores) & sel & ~unscored).sum()),
        "jpeg_shift": jpeg_shift(scores, views, items, ok),
    }


def jpeg_shift(scores, views, items, ok) -> dict:
    """How a JPEG copy moves the out-of-group calibrated P(fake) of a lossless original, per class: the mean of
    (JPEG view - original) over the images with a ``jpeg`` or ``jpeg-444`` view. Near 0 for both classes: the
    model does not read "JPEG" as "real"; a fake's larger drop is the generator trace JPEG destroys."""
    orig = {v.item: k for k, v in enumerate(views) if v.kind == "original" and ok[k]}
    diffs: dict[int, list[float]] = {0: [], 1: []}
    for k, v in enumerate(views):
        if ok[k] and v.kind in ("processed", "jpeg-pair") and v.chain in ("jpeg", "jpeg-444") and v.item in orig \
                and items[v.item].path.lower().endswith(".png"):
            diffs[v.label].append(float(scores[k] - scores[orig[v.item]]))
    return {("real" if c == 0 else "fake"): (float(np.mean(d)) if d else float("nan")) for c, d in diffs.items()} | {
        "n": len(diffs[0]) + len(diffs[1])}


def jpeg_pair_agreement(scores, views, ok, thr: float, band: float) -> dict:
    """Per class, how often a lossless validation image and its JPEG copy (the ``jpeg-pair`` view, quality
    60-95) get the same verdict at ``thr`` with the ``uncertain`` band from ``band``, on out-of-group scores;
    and the verdict changes (original -> JPEG) with their counts. The validation counterpart of the card's
    in-sample PNG/JPEG q95 agreement."""
    def verdict(x: float) -> str:
        return "fake" if x > thr else "uncertain" if x > band else "real"

    orig = {v.item: k for k, v in enumerate(views) if v.kind == "original" and ok[k]}
    out: dict[str, dict] = {}
    for k, v in enumerate(views):
        if v.kind != "jpeg-pair" or not ok[k] or v.item not in orig:
            continue
        a, b = verdict(scores[orig[v.item]]), verdict(scores[k])
        m = out.setdefault("real" if v.label == 0 else "fake", {"n": 0, "same": 0, "flips": {}})
        m["n"] += 1
        m["same"] += a == b
        if a != b:
            m["flips"][f"{a} -> {b}"] = m["flips"].get(f"{a} -> {b}", 0) + 1
    return {c: {"n": m["n"], "same_verdict": m["same"] / m["n"], "flips": m["flips"]} for c, m in sorted(out.items())}


def all_views(items: list[Item], seed: int, zoo_steps: int) -> list[View]:
    """Every view of ``items`` in the order the cached fits expect: originals with their random chains and JPEG
    copies, self-made fakes and their twins, the real chain sweep, then the fake sweep (last: see
    :func:`cached_out_of_group`)."""
    views = plan_views(items, seed)
    views += selfmade_views(items, seed, zoo_steps) + sweep_views(items, views, seed)
    return views + sweep_views(items, views, seed, label=1)


def candidate_results(scores: np.ndarray, views, items, trainval: np.ndarray) -> dict:
    """What the selection rule (:func:`choose`) and the card read from a candidate's out-of-group image scores:
    :func:`summarise` at the pooled 1%-FPR point of the validation reals (``thr``; the chain sweep left out, as
    before it existed), the TPR and held-out-fold worst FPR at the per-chain rule, and the JPEG-copy agreement
    there."""
    labels = np.asarray([v.label for v in views])
    sweep = np.asarray([v.kind == "chain-sweep" for v in views])
    thr = threshold_at(scores[trainval & (labels == 0) & ~sweep], MAX_FPR)
    strict = per_chain_rule(scores, views, items, trainval)
    band = min(threshold_at(scores[trainval & (labels == 0) & ~sweep], BAND_FPR), strict["threshold"])
    return {"scores": scores, "thr": thr, **summarise(scores, views, items, trainval, thr),
            "tpr_per_chain_rule": strict["tpr_originals"],
            "worst_held_out_fpr": strict["worst_held_out_fpr"],
            "jpeg_pairs": jpeg_pair_agreement(scores, views, trainval & np.isfinite(scores), strict["threshold"],
                                              band)}


def choose(results: dict[str, dict]) -> str:
    """The selection rule on the candidates' :func:`candidate_results` (or the ``selection`` a shipped model
    records, which holds the same keys): among those that flag at least ``SELFMADE_FLOOR`` of the self-made
    fakes, the best mean leave-one-family-out AUC; within ``TIE`` of it, the most original fakes flagged at the
    per-chain rule, then the lowest worst per-chain FPR."""
    names = list(results)
    # a candidate must still see the classic up-sampling traces: the self-made fakes are interpolation and
    # decoder traces on real content (scored out-of-group with their real whether trained on or not)
    eligible = [n for n in names if results[n]["tpr_selfmade"] >= SELFMADE_FLOOR] or names
    best = max(results[n]["mean_family_auc"] for n in eligible)
    near = [n for n in eligible if results[n]["mean_family_auc"] >= best - TIE]
    # the shipped threshold holds every chain to the target: among near-equals, the one that then finds most fakes
    return min(near, key=lambda n: (-results[n]["tpr_per_chain_rule"], results[n]["worst_chain_fpr"]))


def _fmt(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zoo-steps", type=int, default=300)
    ap.add_argument("--candidates", default="",
                    help="';'-separated subset of CANDIDATES (their names hold commas; default: all)")
    ap.add_argument("--validate-only", action="store_true", help="stop before the test step; write nothing")
    ap.add_argument("--features-only", action="store_true", help="extract (and cache) the features, then stop")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not args.shared.is_dir():
        print(f"{args.shared} not found: the training data lives in ../shared/data", file=sys.stderr)
        return 2

    items = collect(args.shared)
    views = all_views(items, args.seed, args.zoo_steps)
    feats, errors = extract(views, args.jobs)
    failed = [(views[k].path, views[k].chain, e) for k, e in enumerate(errors) if e]
    for f in failed[:10]:
        logging.warning("view failed: %s", f)
    splits = np.asarray([items[v.item].split for v in views])
    trainval = (splits == "trainval") & np.asarray([f is not None for f in feats])
    print(f"views: {len(views)} ({int(trainval.sum())} trainval), failed {len(failed)}")
    if args.features_only:
        return 0

    # -- selection on out-of-group scores -----------------------------------------------------------------------
    wanted = [c.strip() for c in args.candidates.split(";") if c.strip()]
    unknown = set(wanted) - set(CANDIDATES)
    if unknown:
        print(f"unknown candidates {sorted(unknown)}; valid: {list(CANDIDATES)}", file=sys.stderr)
        return 2
    names = [c for c in CANDIDATES if not wanted or c in wanted]
    results = {}
    sweep = np.asarray([v.kind == "chain-sweep" for v in views])
    for name in names:
        t0 = time.time()
        s = cached_out_of_group(CANDIDATES[name], views, items, feats, trainval, jobs=args.jobs)
        r = results[name] = candidate_results(s, views, items, trainval)
        print(f"{name}: mean LOFO AUC {_fmt(r['mean_family_auc'])}, worst chain FPR {_fmt(r['worst_chain_fpr'])}, "
              f"TPR originals {_fmt(r['tpr_originals'])}, processed fakes {_fmt(r['tpr_processed_fakes'])}, photoreal AUC {_fmt(r['photoreal_auc'])}, "
              f"self-made {_fmt(r['tpr_selfmade'])}, JPEG shift real {_fmt(r['jpeg_shift']['real'])} fake {_fmt(r['jpeg_shift']['fake'])}, "
              f"TPR at the per-chain rule {_fmt(r['tpr_per_chain_rule'])} "
              f"(held-out worst chain {_fmt(r['worst_held_out_fpr'])}), same verdict as JPEG copy there: real "
              f"{_fmt(r['jpeg_pairs']['real']['same_verdict'])} fake {_fmt(r['jpeg_pairs']['fake']['same_verdict'])} "
              f"({time.time() - t0:.0f} s)", flush=True)
    chosen = choose(results)
    print(f"chosen: {chosen}")
    sel = results[chosen]
    shipped = per_chain_rule(sel["scores"], views, items, trainval)
    at_rule = summarise(sel["scores"], views, items, trainval, shipped["threshold"])  # the threshold that ships
    print(f"per family: leave-one-family-out AUC; TPR at the pooled 1%-FPR point ({sel['thr']:.3f}) and at the "
          f"per-chain rule's threshold ({shipped['threshold']:.3f}, the one that ships; log-odds)")
    for f, m in sel["per_family"].items():
        print(f"  {f:22s} n={m['n']:3d} AUC {_fmt(m['auc'])} TPR pooled {_fmt(m['tpr'])} "
              f"shipped {_fmt(at_rule['per_family'][f]['tpr'])}")
    print("per chain: FPR of the validation reals at the pooled point and at the shipped threshold")
    for c, m in sel["per_chain"].items():
        print(f"  chain {c:22s} n={m['n']:3d} FPR pooled {_fmt(m['fpr'])} shipped {_fmt(at_rule['per_chain'][c]['fpr'])}")
    print(f"per-chain threshold rule: log-odds {shipped['threshold']:.3f} (pooled {sel['thr']:.3f}), TPR originals "
          f"{_fmt(shipped['tpr_originals'])} (pooled {_fmt(sel['tpr_originals'])}), worst chain FPR held-out-fold "
          f"{_fmt(shipped['worst_held_out_fpr'])}")
    for c, m in shipped["held_out"].items():
        print(f"  chain {c:22s} n={m['n']:3d} FPR held-out-fold {_fmt(m['fpr'])}")
    hot = threshold_neighbours(sel["scores"], views, items, trainval, shipped["threshold"], root=args.shared)
    print(f"real views within {hot['width']} log-odds of the threshold or above: {hot['n']}; by source "
          f"{hot['sources']}; images with most such views {hot['images']}")
    if args.validate_only:
        return 0

    # -- final fit, calibration, threshold -----------------------------------------------------------------------
    cand = CANDIDATES[chosen]
    labels = np.asarray([v.label for v in views])
    dim = next(f.shape[1] for f in feats if f is not None and len(f)) - len(TILE_META)
    cols = columns(cand["cols"], dim)
    rows = train_rows(views, items, cand["rows"], trainval)
    X, owner, w = tile_table(feats, rows)
    detector = fit(cand, X[:, cols], labels[owner], w, tile_families(views, items, owner))
    oog = sel["scores"]
    fin = trainval & np.isfinite(oog)
    calibrator = create_calibrator("temperature").fit(1 / (1 + np.exp(-oog[fin])), labels[fin])
    p_oog = calibrator(1 / (1 + np.exp(-oog)))
    real_mask = fin & (labels == 0)
    chain = np.asarray([chain_of(v) for v in views], dtype=object)
    thr = per_chain_rule(p_oog, views, items, trainval)["threshold"]
    pooled = threshold_at(p_oog[real_mask & ~sweep], MAX_FPR)
    band = min(threshold_at(p_oog[real_mask & ~sweep], BAND_FPR), thr)
    validation = summarise(p_oog, views, items, trainval, thr)
    validation["pooled_threshold"] = {"threshold": pooled, "tpr_originals": float(np.mean(
        p_oog[fin & (labels == 1) & np.asarray([v.kind == "original" for v in views])] > pooled))}
    validation["held_out_fold"] = {k: shipped[k] for k in ("held_out", "worst_held_out_fpr")}
    validation["jpeg_pair_agreement"] = jpeg_pair_agreement(p_oog, views, fin & trainval, thr, band)
    validation["threshold_neighbours"] = hot  # on the log-odds, at the same rule's threshold
    in_band = (p_oog > band) & (p_oog <= thr)
    orig_fake = fin & (labels == 1) & np.asarray([v.kind == "original" for v in views])
    validation["band"] = {
        "fake_or_uncertain": float(np.mean(p_oog[orig_fake] > band)),
        "reals_uncertain": float(np.mean(in_band[real_mask])),
        "per_chain_uncertain": {c: float(np.mean(in_band[real_mask & (chain == c)]))
                                for c in sorted(set(chain[real_mask]))},
    }
    extractor = create_extractor(EXTRACTOR["name"], **{**EXTRACTOR["params"], "base": shipped_base(cand["cols"])})
    assert extractor._base.dim == len(cols), "the shipped extractor must give exactly the chosen columns"
    detector = TiledDetector.from_fitted(detector, extractor.tile_width, extractor.max_tiles, cand.get("agg", "mean"))
    pipeline = DetectionPipeline(extractor, detector, thr, uncertain_from=band, calibrator=calibrator, info={
        "name": MODEL_NAME,
        "threshold_rule": {
            "target_fpr": MAX_FPR,
            "uncertain_fpr": BAND_FPR,
            "scheme": "out-of-group scores: each fake family, 5 folds of real sources, a view or self-made fake "
                      "with its image",
            "rule": f"lowest calibrated P(fake) with at most {MAX_FPR:.0%} false positives on the validation "
                    "reals of every processing chain (each chain, the originals, JPEG copies and self-made twins "
                    "held to the target separately" + (", each at its split-conformal quantile, so that the target "
                    "holds for the next real photo of the chain; the band's pooled 5% point, over about 5000 "
                    "reals, is in-sample" if CONFORMAL else "") + ")",
            "conformal": CONFORMAL,
        },
        "tile_rule": f"{cand.get('agg', 'mean')} of the tile log-odds over tiles with signal (the tiled detector)",
    })
    test = test_report(pipeline, items, args.shared)
    print(json.dumps(test["summary"], indent=1))
    # the audits see the images the shipped model was trained on (the chosen rule may leave a family out)
    trained = [items[i] for i in sorted({views[k].item for k in rows if views[k].kind == "original"})]
    audit = run_audit(trained)
    region_audit = run_region_audit(trained)
    agreement = format_agreement(pipeline, agreement_images(items, args.seed))
    print(f"PNG vs JPEG: {agreement}")
    pipeline.info.update({
        "training": training_summary(items, views, trainval),
        "validation": as_metrics(validation),
        "selection": {n: {k: results[n][k] for k in ("mean_family_auc", "worst_chain_fpr", "tpr_originals",
                                                     "tpr_processed_fakes", "tpr_selfmade", "photoreal_auc",
                                                     "tpr_per_chain_rule", "worst_held_out_fpr")}
                      for n in names},
        "test": test["summary"],
        "audit": audit,
        "region_audit": region_audit,
        "format_agreement": agreement,
    })
    card = model_card(pipeline, chosen, results, validation, test, audit, items, views, trainval, region_audit,
                      agreement)
    pipeline.save(args.output, card=card)
    print(f"wrote {args.output}")
    return 0


def as_metrics(v: dict) -> dict:
    """The validation summary in the metric names `gendetect model` tabulates (n_fake, auc, acc_fake...)."""
    out = {
        "per_family": {f: {"n_fake": m["n"], "auc": m["auc"], "acc_fake": m["tpr"]} for f, m in v["per_family"].items()},
        "per_chain_fpr": {c: {"n_real": m["n"], "acc_real": 1 - m["fpr"]} for c, m in v["per_chain"].items()},
    }
    if "held_out_fold" in v:  # the threshold rule set without each real fold, counted on it
        out["per_chain_fpr_held_out_fold"] = {c: {"n_real": m["n"], "acc_real": 1 - m["fpr"]}
                                              for c, m in v["held_out_fold"]["held_out"].items()}
        out["worst_chain_fpr_held_out_fold"] = v["held_out_fold"]["worst_held_out_fpr"]
    out.update({k: x for k, x in v.items() if k not in ("per_family", "per_chain", "held_out_fold")})
    out["all"] = {  # every validation real view (processed ones included) and every original fake
        "acc_real": 1 - v["fpr_all_reals"],
        "acc_fake": v["tpr_originals"],
        "mean_family_auc": v["mean_family_auc"],
        "n_real": sum(m["n"] for m in v["per_chain"].values()),
        "n_fake": sum(m["n"] for m in v["per_family"].values()),
    }
    return out


def family_licences(items, views, trainval, by_source: bool = False) -> dict[str, dict[str, int]]:
    """``{family: {licence: trainval images}}`` (``"family (source folder)"`` keys with ``by_source``)."""
    out: dict[str, Counter] = defaultdict(Counter)
    for k, v in enumerate(views):
        if trainval[k] and v.kind == "original":
            it = items[v.item]
            key = it.family.split(":")[0]
            out[f"{key} ({it.source.split('/')[0]})" if by_source else key][it.licence or "unknown"] += 1
    return {f: dict(c.most_common()) for f, c in sorted(out.items())}


def training_summary(items, views, trainval) -> dict:
    kinds = Counter(v.kind for k, v in enumerate(views) if trainval[k])
    fam = Counter(items[v.item].family.split(":")[0] for k, v in enumerate(views) if trainval[k] and
                  v.kind == "original")
    n = sum(fam.values())
    return {"views": dict(kinds), "images_per_family": dict(fam), "chains": CHAIN_POOL, "views_per_image": VIEWS,
            "n_images": n, "labels": {"real": fam.get("real", 0), "fake": n - fam.get("real", 0)},
            "licences_per_family": family_licences(items, views, trainval)}


def run_audit(items) -> dict | None:
    try:
        from gendetect.data.records import ImageRecord
        from gendetect.evaluation.audit import shortcut_audit
    except ImportError:
        return None
    from gendetect.data.readers import probe_records

    recs = probe_records([ImageRecord(path=it.path, label="fake" if it.label else "real", generator=it.family,
                                      source=it.source) for it in items if it.split == "trainval"])
    try:
        return shortcut_audit(recs)
    except Exception as e:  # noqa: BLE001 - the audit is reported, never fatal to training
        logging.warning("audit failed: %s", e)
        return {"error": str(e)}


def _weights_words(cand: dict) -> str:
    """The candidate's own row weights, as the card's calibration line names them after "classes balanced"."""
    words = []
    if cand.get("real_weight", 1.0) != 1.0:
        words.append(f"the reals' rows x{cand['real_weight']:g}")
    if cand.get("family_balance"):
        words.append("fake families weighted alike")
    return "".join(f", then {w}" for w in words)


def model_comparison() -> list[str]:
    """The card's comparison of logistic regression, gradient boosting and a small CNN (from the study's JSON)."""
    f = STUDY
    head = ["### Logistic regression vs gradient boosting vs a small CNN", ""]
    if not f.exists():
        return head + ["Not measured in this run: `python benchmarks/cnn_residual_study.py` writes it.", ""]
    r = json.loads(f.read_text())
    lines = head + [
        (f"On the same views, {r['folds']} folds of fake families (and of real sources), training rows "
        f"`{r.get('rows', 'all')}`; the CNN (about 20k parameters, no early down-sampling, on the 3x3 high-pass "
        f"residual of the central 224 px, {r['epochs']} epochs of random 64 px crops on the CPU) against the trees "
        "and the logistic model on the per-tile features. From "
        f"`{r['command']}`:"),
        "",
        "| model | mean family AUC | TPR at 1% FPR | worst chain FPR | fit+score time (x logistic) |",
        "|---|---|---|---|---|",
    ]
    for m, x in r["models"].items():
        lines.append(f"| {m} | {x['mean_auc']:.3f} | {x['tpr_at_1pct_fpr']:.3f} | {x['worst_chain_fpr']:.3f} "
                     f"({x['worst_chain']}) | {x['time_ratio']:.1f} |")
    lines += ["", "Per family: " + "; ".join(f"**{m}** " + ", ".join(f"{f} {a:.2f}" for f, a in x["aucs"].items())
                                            for m, x in r["models"].items()), ""]
    return lines


AUDIT_WORDS = {
    "file_facts": "format, size, aspect, EXIF, JPEG quality",
    "border": "the outer 2-16 px (frames)",
    "text_strip": "top and bottom quarters (caption panels, text)",
    "content": "illustration vs photo, by colour and texture",
}


def audit_rows(audit: dict | None, region_audit: dict | None) -> list[str]:
    """One Markdown table row per audit check: raw-file AUC and the model's-region AUC, each with its baseline."""

    def cell(a: dict | None, check: str) -> str:
        if not a or "error" in a:
            return "not run"
        r = a if check == "file_facts" else a.get(check)
        if not r or r.get("auc") is None:
            return "–"
        base = r.get("baseline_auc")
        warn = " ⚠" if (r.get("flagged") if check == "file_facts" else r.get("warn")) else ""
        return f"{r['auc']:.2f}" + (f" ({base:.2f})" if base is not None else "") + warn

    return [f"| {c} | {cell(audit, c)} | {cell(region_audit, c) if c != 'file_facts' else 'n/a (re-saved)'} | "
            f"{w} |" for c, w in AUDIT_WORDS.items()]


def run_region_audit(items) -> dict | None:
    """The pixel checks on the regions the model sees, written once as PNG under the cache."""
    from gendetect.data.records import ImageRecord
    from gendetect.evaluation.audit import pixel_audit

    out = CACHE / "audit-regions"
    out.mkdir(parents=True, exist_ok=True)
    recs = []
    for it in items:
        if it.split != "trainval":
            continue
        f = out / f"{hashlib.sha256(f'{it.path}|{it.region}'.encode()).hexdigest()[:16]}.png"
        if not f.exists():
            _region(load_image(it.path), it.region).save(f)
        recs.append(ImageRecord(path=str(f), label="fake" if it.label else "real", generator=it.family,
                                source=it.source))
    try:
        return pixel_audit(recs)
    except Exception as e:  # noqa: BLE001 - the audit is reported, never fatal to training
        logging.warning("region audit failed: %s", e)
        return {"error": str(e)}


def agreement_images(items, seed: int, n: int = 60):
    """``n`` lossless trainval images of both classes (real photos, modern fakes), as the model sees them."""
    pool = [it for it in items if it.split == "trainval" and it.path.lower().endswith(".png")
            and (it.source == "modern-fakes" or it.source.startswith("real-photos/"))]
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False):
        yield _region(load_image(pool[i].path), pool[i].region)


def test_report(pipeline: DetectionPipeline, items: list[Item], shared: Path) -> dict:
    """Score the test-only rows once: test families, wright test, diffusion-examples, test reals per chain."""
    test_items = [it for it in items if it.split == "test"]
    rows = []
    for it in test_items:
        image = _region(load_image(it.path), it.region)
        chains = ["none"] + (CHAIN_POOL if it.label == 0 else [])
        for c in chains:
            im = image if c == "none" else BENIGN.create(c)(image, 0)
            p = float(pipeline.predict_proba([im])[0])
            rows.append({"family": it.family, "source": it.source, "label": it.label, "chain": c, "p": p,
                         "verdict": "uncertain" if math.isnan(p) else pipeline.verdict(p)})
    summary: dict = {"per_set": {}, "per_family": {}, "per_chain_fpr": {}}
    for key in ("source", "family"):
        out = summary["per_set" if key == "source" else "per_family"]
        for name in sorted({r[key] for r in rows if r["chain"] == "none"}):
            rs = [r for r in rows if r[key] == name and r["chain"] == "none"]
            y = np.asarray([r["label"] for r in rs])
            p = np.asarray([r["p"] for r in rs])
            v = Counter(r["verdict"] for r in rs)
            out[name] = {"n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()), "verdicts": dict(v),
                         "fake_or_uncertain": float(np.mean([r["verdict"] != "real" for r in rs if r["label"] == 1]))
                         if (y == 1).any() else None,
                         "real_called_real": float(np.mean([r["verdict"] == "real" for r in rs if r["label"] == 0]))
                         if (y == 0).any() else None}
    orig = [r for r in rows if r["chain"] == "none" and not math.isnan(r["p"])]
    y = np.asarray([r["label"] for r in orig])
    p = np.asarray([r["p"] for r in orig])
    summary["auc_all_test"] = float(roc_auc(y, p)) if len(set(y)) == 2 else None
    for c in ["none"] + CHAIN_POOL:
        rs = [r for r in rows if r["label"] == 0 and r["chain"] == c]
        summary["per_chain_fpr"][c] = float(np.mean([r["verdict"] == "fake" for r in rs])) if rs else None
    summary["tpr_at_threshold"] = float(np.mean([r["verdict"] == "fake" for r in rows if r["label"] == 1]))
    return {"summary": summary, "rows": rows}


def model_card(pipeline, chosen, results, validation, test, audit, items, views, trainval, region_audit=None,
               agreement=None) -> str:
    t = test["summary"]
    hot = validation.get("threshold_neighbours")
    lines = [
        f"# {MODEL_NAME}: the embedded default detector",
        "",
        ("**What it is.** A weight-free pixel-forensics detector: the whole image is cut into 256 px tiles at native "
        f"resolution; each tile's {feature_words(CANDIDATES[chosen]['cols'])} are scored by the per-tile detector "
        f"named below, and the image's log-odds is the {AGG_WORDS[CANDIDATES[chosen].get('agg', 'mean')]} over "
        "tiles with forensic signal. Flat, blank, text-like "
        "and tiny images get `uncertain` with a reason (the no-signal guard). It runs with the core install (numpy "
        "only at scan time)."),
        "",
        f"- detector: `{pipeline.detector.get_config()}`",
        f"- chosen candidate: **{chosen}**",
        f"- threshold: **{pipeline.threshold:.4f}** ({pipeline.info['threshold_rule']['rule']})",
        f"- uncertain band: {pipeline.uncertain_from:.4f} – {pipeline.threshold:.4f} (the pooled {BAND_FPR:.0%}-FPR point)",
        ("- P(fake) is calibrated by temperature scaling on the out-of-group validation scores. A temperature has "
        "no intercept: it sharpens or softens the scores but keeps the model's own midpoint, which the training "
        f"weights set (classes balanced{_weights_words(CANDIDATES[chosen])}), so read P(fake) as a calibrated score for "
        "ranking and for the threshold and band above, not as the probability for your stream; where fakes are "
        "rarer, the same score means a lower probability."),
        "",
        "Reproduce: `make default-model` (`python scripts/train_default.py --shared ../shared/data`).",
        "",
        "## Training data (split trainval only)",
        "",
        "| family / set | trainval images | in the shipped model's training rows | licence of the files |",
        "|---|---|---|---|",
    ]
    used = set(train_rows(views, items, CANDIDATES[chosen]["rows"], trainval).tolist())
    fam = Counter((items[v.item].family.split(":")[0], items[v.item].source.split("/")[0], k in used)
                  for k, v in enumerate(views) if trainval[k] and v.kind == "original")
    licences = family_licences(items, views, trainval, by_source=True)
    for f, s in sorted({(f, s) for f, s, _ in fam}):
        n_used, n_all = fam.get((f, s, True), 0), fam.get((f, s, True), 0) + fam.get((f, s, False), 0)
        words = "; ".join(f"{lic} ({n})" for lic, n in licences[f"{f} ({s})"].items())
        lines.append(f"| {f} ({s}) | {n_all} | {n_used if n_used else 'validation only'} | {words} |")
    kinds = Counter(v.kind for k, v in enumerate(views) if trainval[k])
    lines += [
        "",
        (f"Views: {dict(kinds)}. Every image is also seen through {VIEWS} random benign chains drawn alike for both "
        "classes, and every lossless (PNG) image, real or fake, also as a JPEG copy (quality 60-95, 4:2:0; "
        "`jpeg-pair`, in the training rows of the candidates marked \"JPEG copies\", scored for all). Every "
        "validation real also goes through every other chain (`chain-sweep`: scored to measure each chain's "
        "false-positive rate; in the training rows of the candidates marked \"every real through every chain\"), "
        "and every validation fake too (`fake-sweep`: only in the training rows, and the scores, of the candidate "
        "marked \"every image through every chain\"). Licences per file come from each folder's licence note in "
        "`../shared/data/*/` and the repository in its `origin` column; together they allow research and "
        "evaluation use, not every commercial one (CC BY-NC-SA, Open RAIL-M, no licence file). Regions: cnndetection images as a 240 px centre crop "
        "inside the frame (the frame colour leaks the label); wright-photos as the top 1024 x 768 photo (the "
        "caption panel leaks the label)."),
        "",
        "## Model selection (validation: out-of-group scores, trainval only)",
        "",
        ("| candidate | mean leave-one-family-out AUC | worst per-chain FPR | TPR (originals) | TPR (processed fakes) "
        "| TPR (self-made fakes) | photoreal AUC | TPR at the per-chain rule | its worst held-out-fold chain FPR |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, r in results.items():
        mark = " **(chosen)**" if n == chosen else ""
        lines.append(f"| {n}{mark} | {_fmt(r['mean_family_auc'])} | {_fmt(r['worst_chain_fpr'])} | "
                     f"{_fmt(r['tpr_originals'])} | {_fmt(r['tpr_processed_fakes'])} | {_fmt(r['tpr_selfmade'])} | "
                     f"{_fmt(r['photoreal_auc'])} | {_fmt(r['tpr_per_chain_rule'])} | "
                     f"{_fmt(r['worst_held_out_fpr'])} |")
    lines += [
        "",
        ("Each candidate's threshold here is its own 1%-FPR point on the validation reals pooled (originals, "
        f"{VIEWS} random chains each, JPEG copies, self-made twins); its per-chain FPR at that point is measured on "
        "every validation real through every chain (the chain sweep). Rule: among the "
        f"candidates that flag at least {SELFMADE_FLOOR:.0%} of the self-made fakes (the classic interpolation and "
        "decoder traces), the best mean leave-one-family-out AUC; within "
        f"{TIE} of it, the most original fakes flagged at the shipped rule (every chain held to at most "
        f"{MAX_FPR:.0%} false positives), then the lowest worst per-chain FPR. Until the chain sweep, the "
        "tie-break was the lowest worst per-chain FPR at the pooled point and the threshold that pooled point; "
        "both changed on these validation figures (with the sweep, every candidate's pooled point let some chain "
        "reach 2-9%), before any test figure of this build was seen. The self-made floor was added after v4's "
        "first build: "
        "chosen without it, the best candidate (periodic+npr+noise without self-made training rows) flagged 1.5% "
        "of the self-made fakes and scored a plain 2x nearest up-sampling below real photos, a failure a unit "
        "test caught; that build's test figures were seen before the floor was added. The two candidates that "
        "also train on the chain sweep were added after v5 (the previous candidate here, trained on 4 random "
        "chains per real) and its test figures had been seen: v5's per-chain threshold was set by the chains "
        "each real met in training only 4 times in 25 (denoise-bilateral, screenshot, webp). The seed-bagged "
        "candidate (x5 seeds) was added after v6 and its test figures had been seen, to test whether averaging "
        "fits smooths the tail of the real scores that sets the per-chain threshold; it did not. The candidate "
        "that trains on every image through every chain was added after v6 too (its test figures seen), because "
        "the chain sweep had made the training rows unlike: every real through all 25 chains, every fake through "
        "4. The candidate with the reals' rows weighted x3 was added after v6 too (its test figures seen): the "
        "shipped rule is a low-FPR point set by the highest-scoring reals, and the weight makes the loss spend "
        "itself on that tail. It became v7 on these validation figures, by the rule above, not on any test "
        "figure; its lead was small (a few more original fakes flagged at the shipped rule). Two candidates were "
        "added after v7 (its test figures seen), both decided before either was scored: fake families weighted "
        "alike (sd1's 90 fakes had outweighed kolors' 19 in the loss), and leaves of at least 200 tiles (one "
        "McMaster photo had 9 views near the threshold; a leaf that small cannot isolate one image). The second "
        "became v8 by the rule above: its mean leave-one-family-out AUC is 0.009 below v7's, inside the 0.01 "
        "margin, and it flags more original fakes at the shipped rule (the table); its held-out-fold rate on one "
        "chain, downscale-x0.5, was one view above the 1% target. v9 is a rebuild of the same candidates under "
        "the same rule after v8 (its test figures seen), with nothing about either changed: the tiles extractor "
        "had gained the graphic check (text and flat-graphic tiles carry no forensic signal, through JPEG too), "
        "so v8 had been trained and calibrated on tiles its own scans no longer score, and the card gained the "
        "licence of each family. v10 is the same candidates under the same selection rule after v9 (its test "
        "figures seen), with one change decided on v9's validation figures: each chain's 1% point is its "
        "split-conformal quantile instead of the in-sample one (v9's rule let downscale-x0.75 reach 1.1% on the "
        "real folds it did not see; the conformal quantile lets at most one fewer real of each chain through, "
        "and holds the target for the next real photo of the chain). The candidate with the reals weighted x6 "
        "was added after v10 (its test figures seen), to test whether a heavier weight on the tail that sets "
        "the rule flags more fakes there than x3 did; it did not. Whichever candidate the rule picks ships; "
        "it is named at the top of this card."),
        "",
        *model_comparison(),
        "## Validation of the shipped model (out-of-group, at the shipped threshold)",
        "",
        "| held-out family | fakes | AUC | TPR at threshold |",
        "|---|---|---|---|",
    ]
    for f, m in validation["per_family"].items():
        lines.append(f"| {f} | {m['n']} | {_fmt(m['auc'])} | {_fmt(m['tpr'])} |")
    lines += [
        "",
        (f"Photoreal-only (no anime/art finetunes) AUC: {_fmt(validation['photoreal_auc'])}. "
        f"TPR on processed fakes: {_fmt(validation['tpr_processed_fakes'])}; on self-made fakes: "
        f"{_fmt(validation['tpr_selfmade'])}. Images without signal: {validation['no_signal']}."),
        "",
        (f"A JPEG copy (chains `jpeg`, `jpeg-444`) of a lossless original changes its calibrated P(fake) on average "
        f"by {_fmt(validation['jpeg_shift']['real'])} for reals and {_fmt(validation['jpeg_shift']['fake'])} for "
        f"fakes ({validation['jpeg_shift']['n']} pairs, out-of-group): JPEG lowers the score of a fake because it "
        "erases part of the generator trace; a drop for reals as large would mean the model reads the format."),
        "",
        (f"The threshold holds every chain to at most {MAX_FPR:.0%} false positives on the validation reals"
        + (" (at each chain's split-conformal quantile)" if CONFORMAL else "") + ", so "
        "the in-sample column below is at most the target by construction. The honest estimate is the next "
        "column: for each of the five folds of real sources, the same rule set on the other folds' reals and the "
        "false positives counted on this fold's (a source the threshold never saw). The pooled 1%-FPR point "
        f"({validation['pooled_threshold']['threshold']:.4f}) would flag "
        f"{_fmt(validation['pooled_threshold']['tpr_originals'])} of the original fakes against "
        f"{_fmt(validation['tpr_originals'])} here, and let the worst chains reach several times the target; the "
        f"fakes between the two points are called `uncertain` (the band starts at the pooled {BAND_FPR:.0%}-FPR "
        f"point): {_fmt(validation['band']['fake_or_uncertain'])} of the original fakes are called fake or "
        f"uncertain, and {_fmt(validation['band']['reals_uncertain'])} of the real views uncertain (per chain in "
        "the table)."),
        "",
        ("| real photos through chain | n | false-positive rate at the threshold | held-out-fold rate (target ≤ 1%) "
         "| called uncertain |"),
        "|---|---|---|---|---|",
    ]
    held = validation["held_out_fold"]["held_out"]
    for c, m in validation["per_chain"].items():
        h = held.get(c, {}).get("fpr", float("nan"))
        flag = "" if not h > MAX_FPR else " ⚠ above target"
        u = validation["band"]["per_chain_uncertain"].get(c)
        lines.append(f"| {c} | {m['n']} | {_fmt(m['fpr'])} | {_fmt(h)}{flag} | {_fmt(u)} |")
    lines += [
        "",
        "## Test-only results (reported once, never used for any choice)",
        "",
        ("The same test rows were reported for the previous defaults (v2, v3), for v4's first build (the "
        "candidate without self-made training rows, rejected by the self-made floor above: 6 of 8 "
        "diffusion-examples fakes and 22 of 26 unseen-family fakes fake or uncertain, 4 of 10 wright fakes, test "
        "AUC 0.92) and for v4 (this candidate with the pooled 1%-FPR threshold, 0.7621, and the uncertain band "
        "from 0.6587: 4 of 8 diffusion-examples fakes and 23 of 26 unseen-family fakes fake or uncertain, 5 of "
        "10 wright fakes, TPR at the threshold 0.455, test AUC 0.93) and for v5 (v4's candidate with the "
        "per-chain threshold rule, 0.8973: 4 of 8 diffusion-examples fakes and 23 of 26 unseen-family fakes fake "
        "or uncertain, 5 of 10 wright fakes, TPR at the threshold 0.318, test AUC 0.93) and for v6 (the same "
        "candidate without the weight on the reals, threshold 0.8911: 4 of 8 diffusion-examples fakes and 24 of "
        "26 unseen-family fakes fake or uncertain, 5 of 10 wright fakes, TPR at the threshold 0.386, test AUC "
        "0.93) and for v7 (the same candidate with leaves of the default 20 tiles, threshold 0.7378: 5 of 8 "
        "diffusion-examples fakes and 24 of 26 unseen-family fakes fake or uncertain, 5 of 10 wright fakes, TPR "
        "at the threshold 0.432, test AUC 0.93) and for v8 (leaves of at least 200 tiles, fake families as "
        "they come, threshold 0.7375: 5 of 8 diffusion-examples fakes and 23 of 26 unseen-family fakes fake or "
        "uncertain, 5 of 10 wright fakes, TPR at the threshold 0.409, test AUC 0.93) and for v9 (the in-sample "
        "per-chain quantile, threshold 0.7492: 4 of 8 diffusion-examples fakes and 24 of 26 unseen-family fakes "
        "fake or uncertain, 5 of 10 wright fakes, TPR at the threshold 0.364, test AUC 0.93). Every choice for this "
        "model was made on "
        "validation scores and on the synthetic up-sampling check, none on these tables; the floor and the "
        "per-chain threshold rule were adopted although they lowered these figures."),
        "",
        "| test set | reals | fakes | fakes called fake or uncertain | reals called real |",
        "|---|---|---|---|---|",
    ]
    for s, m in t["per_set"].items():
        lines.append(f"| {s} | {m['n_real']} | {m['n_fake']} | {_fmt(m['fake_or_uncertain'])} | "
                     f"{_fmt(m['real_called_real'])} |")
    lines += ["", "| test family | fakes | verdicts |", "|---|---|---|"]
    for f, m in t["per_family"].items():
        if f != "real":
            lines.append(f"| {f} | {m['n_fake']} | {m['verdicts']} |")
    lines += [
        "",
        f"AUC over all test rows: {_fmt(t['auc_all_test'])}; TPR at the threshold: {_fmt(t['tpr_at_threshold'])}.",
        "",
        "| test reals through chain | false-positive rate |",
        "|---|---|",
    ]
    for c, v in t["per_chain_fpr"].items():
        lines.append(f"| {c} | {_fmt(v)} |")
    lines += [
        "",
        "## PNG vs JPEG agreement",
        "",
        (f"The same pixels as PNG and as JPEG q{agreement['quality']}, on {agreement['n']} lossless trainval images "
        "(real photos and modern fakes, both classes; `gendetect.evaluation.agreement.format_agreement`, also "
        "`python benchmarks/default_format_agreement.py`):"),
        "",
        f"- same verdict: **{_fmt(agreement['same_verdict'])}**",
        f"- mean |ΔP(fake)|: {_fmt(agreement['mean_abs_dp'])}; largest: {_fmt(agreement['max_abs_dp'])}",
        f"- verdict changes (PNG -> JPEG): {agreement['flips'] or 'none'}",
        "",
        ("The same question out-of-group, on every lossless validation image and its JPEG copy (quality 60-95, "
        "the `jpeg-pair` views), at the shipped threshold and band:"),
        "",
        "| class | pairs | same verdict | verdict changes (original -> JPEG) |",
        "|---|---|---|---|",
        *(f"| {c} | {m['n']} | {_fmt(m['same_verdict'])} | {m['flips'] or 'none'} |"
          for c, m in validation["jpeg_pair_agreement"].items()),
        "",
        "## Audit of the training set",
        "",
        ("The shortcut audit (`gendetect.evaluation.audit.shortcut_audit`) on the raw files of the images in the "
        "shipped model's training rows (GAN-era fakes are absent when the rule leaves them out), and its pixel "
        "checks again on the regions the model is trained on (the centre crop inside the cnndetection frame, the "
        "wright photo without its caption panel). AUC is how well each check alone separates real from fake "
        "(chance 0.50); *inside* is the same features away from the border or strip."),
        "",
        "| check | raw files: AUC (inside) | model's regions: AUC (inside) | what it looks at |",
        "|---|---|---|---|",
        *audit_rows(audit, region_audit),
        "",
        "## What it is not good for",
        "",
        ("- Images that were heavily resized, re-compressed or screenshotted after generation: the up-sampling "
        "trace is destroyed, the model then says `real` or `uncertain`. A `real` verdict is never proof."),
        ("- Partly generated images (inpainting, outpainting, composites): the "
        f"{AGG_WORDS[CANDIDATES[chosen].get('agg', 'mean')]} over tiles dilutes a small generated region."),
        ("- Flat graphics, text, tiny images, and photos that are mostly flat (a product on a white background): "
        "`uncertain` by design."),
        "- Generators whose decoders leave no periodic trace, and images with deliberate anti-forensics.",
        *([f"- Real photos like those that set the threshold: of the validation real views within {hot['width']} "
           f"log-odds of it or above ({hot['n']}), most come from "
           + ", ".join(f"{k} ({n})" for k, n in hot["sources"].items()) + "; the images with most such views: "
           + ", ".join(f"`{Path(k).name}` ({n})" for k, n in hot["images"].items())
           + ". Look at them to see which kinds of real photo score high."] if hot else []),
        ("- It was trained on about a thousand images; it is a screening tool. Train your own with "
        "`gendetect train` on your data."),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
