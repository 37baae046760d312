"""Refit the audit's content model (illustration vs photograph) and write src/gendetect/evaluation/content_model.json.

Usage: python scripts/fit_content_model.py [DATA_DIR]   (default: ../shared/data)

Training data, all from ``trainval`` rows (never ``test`` rows or diffusion-examples/):
  illustrations: modern-fakes family ``sd1-finetune`` (anime and art finetunes; partial rows dropped) and 120
                 procedural flat-art pictures (gendetect.evaluation.audit.procedural_illustration);
  photographs:   real-photos, cnndetection-gallery reals and fakes (the centre 240 px, inside the frame: GAN-era
                 photoreal fakes keep the photo class from being "all real") and wright-photos (the top
                 1024x768 picture, without the caption panel).
The JSON records the counts and the 5-fold cross-validated AUCs, so the shipped weights say what they were fitted on.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from gendetect.evaluation.audit import content_features, fit_content_model, procedural_illustration
from gendetect.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "gendetect" / "evaluation" / "content_model.json"


def _rows(data: Path, folder: str) -> list[dict[str, str]]:
    with open(data / folder / "labels.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("split", "trainval") != "test"]


def _features(
    data: Path, folder: str, rows: list[dict[str, str]], box: tuple[int, int, int, int] | None
) -> np.ndarray:
    out = []
    for r in rows:
        im = load_image(data / folder / r["file"])
        out.append(content_features(im.crop(box) if box else im))
    return np.asarray(out)


def main(argv: list[str]) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    data = Path(argv[0]) if argv else ROOT.parent / "shared" / "data"
    mf = [r for r in _rows(data, "modern-fakes") if r["source"] == "sd1-finetune" and r["partial"] == "0"]
    groups = {
        "modern-fakes/sd1-finetune": (_features(data, "modern-fakes", mf, None), 1),
        "procedural flat art": (np.asarray([content_features(procedural_illustration(s)) for s in range(120)]), 1),
        "real-photos": (_features(data, "real-photos", _rows(data, "real-photos"), None), 0),
        "cnndetection-gallery (centre 240 px)": (
            _features(data, "cnndetection-gallery", _rows(data, "cnndetection-gallery"), (58, 58, 298, 298)),
            0,
        ),
        "wright-photos (top 1024x768)": (
            _features(data, "wright-photos", _rows(data, "wright-photos"), (0, 0, 1024, 768)),
            0,
        ),
    }
    photos = np.concatenate([F for F, c in groups.values() if c == 0])
    ills = np.concatenate([F for F, c in groups.values() if c == 1])
    model = fit_content_model(photos, ills)
    X, y = np.r_[photos, ills], np.r_[np.zeros(len(photos)), np.ones(len(ills))]
    z = (X - X.mean(0)) / (X.std(0) + 1e-9)
    cv = cross_val_predict(
        LogisticRegression(C=model["C"], class_weight="balanced", max_iter=2000),
        z,
        y,
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )[:, 1]
    n_anime = len(groups["modern-fakes/sd1-finetune"][0])
    anime_vs_photo = np.r_[cv[len(photos) : len(photos) + n_anime], cv[: len(photos)]]
    model["fitted_on"] = {
        name: {"n": len(F), "class": "illustration" if c else "photo"} for name, (F, c) in groups.items()
    }
    model["validation"] = {
        "scheme": "5-fold stratified cross-validation (same recipe)",
        "auc_all": float(roc_auc_score(y, cv)),
        "auc_sd1_finetune_vs_photos": float(
            roc_auc_score(np.r_[np.ones(n_anime), np.zeros(len(photos))], anime_vs_photo)
        ),
    }
    model["refit"] = "python scripts/fit_content_model.py"
    OUT.write_text(json.dumps(model, indent=2) + "\n")
    print(json.dumps(model["validation"], indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
